"""benchmarks/two_digit_legibility: how an image is cut into pieces of ink and how a piece is made
into an MNIST-style digit before the digit classifier judges it."""

import numpy as np
from scipy import ndimage

from benchmarks.two_digit_legibility import as_mnist_digit, binary, ink_pieces


def test_two_apart_strokes_are_two_pieces_a_one_pixel_gap_is_not_and_specks_are_dropped():
    image = np.zeros((60, 60), np.float32)
    image[5:30, 10:13] = 0.9          # a vertical stroke, 75 pixels
    image[35:55, 40:52] = 0.6         # a block, 240 pixels
    image[40:50, 20:23] = 0.8         # a stroke broken by one row of background ...
    image[51:58, 20:23] = 0.8         # ... is still one piece
    image[2, 58] = 1.0                # a speck
    image[45, 5] = 0.4                # grey below half: not ink
    pieces = ink_pieces(image, min_pixels=20)
    assert [int(p.sum()) for p in pieces] == [240, 75, 51]
    assert all(set(np.unique(p)) == {0.0, 1.0} for p in pieces)
    assert len(ink_pieces(image, min_pixels=60)) == 2


def test_a_piece_becomes_a_digit_whose_longer_side_is_20_pixels_centred_by_its_mass():
    piece = np.zeros((60, 60), np.float32)
    piece[10:50, 30:40] = 1.0         # 40 tall, 10 wide
    digit = as_mnist_digit(piece)
    assert digit.shape == (28, 28)
    rows = np.nonzero(digit.max(axis=1) > 0.5)[0]
    assert len(rows) == 20                # 40 px scaled to 20
    assert abs(digit.sum() - 20 * 5) < 2  # 10 px wide scaled to 5 (a half-pixel shift spreads its edges)
    cy, cx = ndimage.center_of_mass(digit)
    assert abs(cy - 13.5) < 0.05 and abs(cx - 13.5) < 0.05


def test_mnist_digits_are_judged_binary_as_the_pieces_are():
    digits = np.array([[[0, 127, 128, 255]]], np.uint8)
    assert binary(digits).tolist() == [[[[0.0], [0.0], [1.0], [1.0]]]]
