"""benchmarks/two_digit_legibility: how an image is cut into pieces of ink and how a piece is made
into an MNIST-style digit before the digit classifier judges it."""

import os

import numpy as np
import pytest
from scipy import ndimage

from benchmarks.two_digit_legibility import as_mnist_digit, binary, ink_pieces
from draw_tf import mnist_scenes

SHARED_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "mnist")


def test_apart_strokes_are_separate_pieces_a_short_gap_is_not_and_specks_are_dropped():
    image = np.zeros((60, 60), np.float32)
    image[5:30, 10:13] = 0.9          # a vertical stroke, 75 pixels
    image[35:55, 40:52] = 0.6         # a block, 240 pixels
    image[40:50, 20:23] = 0.8         # a stroke broken by two rows of background ...
    image[52:58, 20:23] = 0.8         # ... is still one piece
    image[2:10, 30:33] = 0.8          # a stroke broken by three rows ...
    image[13:20, 30:33] = 0.8         # ... is two
    image[2, 58] = 1.0                # a speck
    image[45, 5] = 0.4                # grey below half: not ink
    pieces = ink_pieces(image, min_pixels=20)
    assert [int(p.sum()) for p in pieces] == [240, 75, 48, 24, 21]
    assert all(set(np.unique(p)) == {0.0, 1.0} for p in pieces)
    assert len(ink_pieces(image, min_pixels=60)) == 2


def test_a_piece_becomes_a_binary_digit_whose_longer_side_is_20_pixels_with_its_mass_at_14_14():
    piece = np.zeros((60, 60), np.float32)
    piece[10:50, 30:42] = 1.0         # 40 tall, 12 wide
    digit = as_mnist_digit(piece)
    assert digit.shape == (28, 28) and set(np.unique(digit)) == {0.0, 1.0}
    assert np.count_nonzero(digit.max(axis=1)) == 20 and np.count_nonzero(digit.max(axis=0)) == 6
    cy, cx = ndimage.center_of_mass(digit)
    assert abs(cy - 14.0) <= 0.5 and abs(cx - 14.0) <= 0.5


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(SHARED_MNIST, "train-images-idx3-ubyte.gz")),
    reason="the MNIST IDX files are not in ../shared/data/mnist",
)
def test_a_real_digit_pasted_into_a_scene_comes_back_as_itself():
    digits, _ = mnist_scenes.mnist_digits("validation", SHARED_MNIST)
    overlaps = []
    for i, digit in enumerate(digits[:200]):
        scene = np.zeros((60, 60), np.float32)
        top, left = 3 + i % 25, 20 - i % 17
        scene[top : top + 28, left : left + 28] = digit / 255.0
        pieces = ink_pieces(scene, min_pixels=20)
        back = as_mnist_digit(sum(pieces))
        original = binary(digit[None])[0, ..., 0]
        overlaps.append(np.sum((back > 0) & (original > 0)) / np.sum((back > 0) | (original > 0)))
    assert np.median(overlaps) > 0.95  # 1.0 here; 0.62 with the mass at 13.5


def test_mnist_digits_are_judged_binary_as_the_pieces_are():
    digits = np.array([[[0, 127, 128, 255]]], np.uint8)
    assert binary(digits).tolist() == [[[[0.0], [0.0], [1.0], [1.0]]]]
