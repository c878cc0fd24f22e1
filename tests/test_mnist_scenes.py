"""MNIST IDX files, the digit splits, and the cluttered and two-digit scenes made from them."""

import gzip
import os

import numpy as np
import pytest

from draw_tf import mnist_scenes

SHARED_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "mnist")


def write_idx(path, array):
    """An IDX file of unsigned bytes as in the MNIST distribution (gzipped when the name ends in .gz)."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def synthetic_digits(n, seed=0):
    """n <= 156 28x28 "digits": a solid 10x10 square of grey level 100 + i at a random spot, label i % 10."""
    rng = np.random.default_rng(seed)
    digits = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        top, left = rng.integers(0, 19, size=2)
        digits[i, top : top + 10, left : left + 10] = 100 + i
    return digits, np.arange(n) % 10


def write_mnist_dir(directory, n=50, with_train=False):
    """A directory of MNIST IDX files holding synthetic digits; returns (test digits, labels)."""
    os.makedirs(directory, exist_ok=True)
    digits, labels = synthetic_digits(n)
    write_idx(os.path.join(directory, "t10k-images-idx3-ubyte.gz"), digits)
    write_idx(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"), labels)
    if with_train:
        write_idx(os.path.join(directory, "train-images-idx3-ubyte.gz"), digits[::-1])
        write_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"), labels[::-1])
    return digits, labels


@pytest.mark.parametrize("name", ["images.gz", "images"])
def test_idx_round_trip(tmp_path, name):
    digits, _ = synthetic_digits(7)
    write_idx(str(tmp_path / name), digits)
    np.testing.assert_array_equal(mnist_scenes.read_idx(str(tmp_path / name)), digits)


def test_idx_errors_name_the_problem(tmp_path):
    path = str(tmp_path / "bad")
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x0d\x01\x00\x00\x00\x02ab")  # float data
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes: expected .* received 0x00000d01"):
        mnist_scenes.read_idx(path)
    write_idx(path, np.zeros((3, 4), np.uint8))
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-2])
    with pytest.raises(ValueError, match=r"truncated: header says \[3, 4\]"):
        mnist_scenes.read_idx(path)


def test_test_digits_only_are_split_80_20_disjoint(tmp_path):
    digits, labels = write_mnist_dir(str(tmp_path), n=50)
    train, train_labels = mnist_scenes.mnist_digits("train", str(tmp_path))
    held_out, held_out_labels = mnist_scenes.mnist_digits("validation", str(tmp_path))
    assert len(train) == 40 and len(held_out) == 10
    # every digit is in exactly one split (the grey level 100 + i identifies digit i), labels follow it
    ids = np.concatenate([train.max(axis=(1, 2)), held_out.max(axis=(1, 2))]) - 100
    assert sorted(ids) == list(range(50))
    np.testing.assert_array_equal(np.concatenate([train_labels, held_out_labels]), labels[ids])


def test_full_mnist_files_give_train_validation_and_test(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_scenes, "FULL_TRAIN_SIZE", 15)  # of the 20 training digits here
    digits, labels = write_mnist_dir(str(tmp_path / "mnist"), n=20, with_train=True)
    train, train_labels = mnist_scenes.mnist_digits("train", str(tmp_path))  # found in data_dir/mnist
    validation, validation_labels = mnist_scenes.mnist_digits("validation", str(tmp_path))
    test, test_labels = mnist_scenes.mnist_digits("test", str(tmp_path))
    np.testing.assert_array_equal(train, digits[::-1][:15])  # the training files hold the digits reversed
    np.testing.assert_array_equal(validation_labels, labels[::-1][15:])
    np.testing.assert_array_equal(test, digits)
    np.testing.assert_array_equal(test_labels, labels)


def test_test_digits_only_have_no_test_split(tmp_path):
    write_mnist_dir(str(tmp_path), n=10)
    with pytest.raises(ValueError, match=r"no 'test' split\. Add train-images-idx3-ubyte.gz"):
        mnist_scenes.mnist_digits("test", str(tmp_path))


def test_missing_digits_say_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        mnist_scenes.mnist_digits("train", str(tmp_path))
    with pytest.raises(ValueError, match="splits"):
        mnist_scenes.mnist_digits("extra", str(tmp_path))


def test_cluttered_scene_holds_its_digit_and_clutter_from_other_digits():
    digits, labels = synthetic_digits(30)
    scenes, scene_labels = mnist_scenes.cluttered_scenes(digits, labels, size=100, num_fragments=8, fragment_size=8, seed=3)
    assert scenes.shape == (30, 100, 100, 1) and scenes.dtype == np.uint8
    np.testing.assert_array_equal(scene_labels, labels)
    for i, scene in enumerate(scenes[..., 0]):
        # digit i (a 10x10 square of grey level 100 + i) is pasted whole: a 10x10 block >= 100 + i
        at_least = np.pad(scene >= 100 + i, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        block_sums = at_least[10:, 10:] - at_least[:-10, 10:] - at_least[10:, :-10] + at_least[:-10, :-10]
        assert block_sums.max() == 100
        # clutter: at most 8 fragments of 8x8, never cut from digit i itself
        lit = (scene > 0).sum()
        assert 100 <= lit <= 100 + 8 * 64
        assert (scene == 100 + i).sum() <= 100
    assert any(len(np.unique(scene)) > 2 for scene in scenes[..., 0])  # clutter is there
    # the digit alone (no clutter) appears whole: a 10x10 square at a position inside the image
    alone, _ = mnist_scenes.cluttered_scenes(digits, labels, num_fragments=0, seed=3)
    for i, scene in enumerate(alone[..., 0]):
        rows, cols = np.nonzero(scene)
        assert (rows.max() - rows.min(), cols.max() - cols.min(), len(rows)) == (9, 9, 100)


def test_cluttered_digit_positions_say_where_each_digit_is_pasted():
    digits = np.zeros((25, 28, 28), np.uint8)
    digits[:, 9:19, 9:19] = 100 + np.arange(25)[:, None, None]  # digit i: a 10x10 square of grey 100 + i
    labels = np.zeros(25, np.int64)
    corners = mnist_scenes.cluttered_digit_positions(25, size=100, seed=3)
    for clutter in (0, 8):  # the same corners with and without the fragments
        scenes, _ = mnist_scenes.cluttered_scenes(digits, labels, size=100, num_fragments=clutter, fragment_size=8, seed=3)
        for i, (top, left) in enumerate(corners):
            box = scenes[i, top:top + 28, left:left + 28, 0]
            assert box.shape == (28, 28) and np.all(box[9:19, 9:19] >= 100 + i)
    assert not np.array_equal(corners, mnist_scenes.cluttered_digit_positions(25, size=100, seed=4))


def test_scenes_are_determined_by_the_seed():
    digits, labels = synthetic_digits(12)
    a, _ = mnist_scenes.cluttered_scenes(digits, labels, seed=5)
    b, _ = mnist_scenes.cluttered_scenes(digits, labels, seed=5)
    c, _ = mnist_scenes.cluttered_scenes(digits, labels, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(
        mnist_scenes.two_digit_scenes(digits, 9, seed=1), mnist_scenes.two_digit_scenes(digits, 9, seed=1)
    )


def test_two_digit_scenes_hold_two_whole_digits():
    digits = np.full((5, 28, 28), 255, np.uint8)  # solid digits: the scene's lit area shows both
    scenes = mnist_scenes.two_digit_scenes(digits, 40, size=60, seed=0)
    assert scenes.shape == (40, 60, 60, 1)
    area = (scenes[..., 0] > 0).sum(axis=(1, 2))
    assert np.all(area >= 28 * 28) and np.all(area <= 2 * 28 * 28)
    assert np.any(area > 28 * 28 + 200)  # mostly two separate digits, not always on top of each other


def test_digits_reach_every_position_including_both_edges():
    digits, labels = np.full((400, 28, 28), 255, np.uint8), np.zeros(400, np.int64)
    scenes, _ = mnist_scenes.cluttered_scenes(digits, labels, size=40, num_fragments=0, seed=0)
    tops = [np.nonzero(scene.any(axis=1))[0][0] for scene in scenes[..., 0]]
    lefts = [np.nonzero(scene.any(axis=0))[0][0] for scene in scenes[..., 0]]
    assert sorted(set(tops)) == list(range(13)) and sorted(set(lefts)) == list(range(13))  # 0 .. 40 - 28


def test_scene_arguments_are_checked():
    digits, labels = synthetic_digits(4)
    with pytest.raises(ValueError, match="4 digits, received 3 labels"):
        mnist_scenes.cluttered_scenes(digits, labels[:3])
    with pytest.raises(ValueError, match=r"\[n, 28, 28\]"):
        mnist_scenes.cluttered_scenes(digits[:, :20], labels)
    with pytest.raises(ValueError, match="size must be at least 28"):
        mnist_scenes.two_digit_scenes(digits, 3, size=20)


SHARED_FULL_MNIST = all(
    os.path.isfile(os.path.join(SHARED_MNIST, name))
    for names in mnist_scenes.IDX_FILES.values() for name in names
)
# Label counts of the 60,000 official training digits (../shared/data/README.md).
MNIST_TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.skipif(not SHARED_FULL_MNIST, reason="the full MNIST IDX files are not in ../shared/data/mnist")
def test_real_full_mnist_splits():
    train, train_labels = mnist_scenes.mnist_digits("train", SHARED_MNIST)
    held_out, held_out_labels = mnist_scenes.mnist_digits("validation", SHARED_MNIST)
    test, test_labels = mnist_scenes.mnist_digits("test", SHARED_MNIST)
    assert train.shape == (55000, 28, 28) and held_out.shape == (5000, 28, 28) and test.shape == (10000, 28, 28)
    # train + validation are the 60,000 official training digits, in file order
    counts = np.bincount(np.concatenate([train_labels, held_out_labels]), minlength=10)
    assert counts.tolist() == MNIST_TRAIN_LABEL_COUNTS
    assert np.bincount(test_labels, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(np.concatenate([train, held_out]).mean()) - 33.318) < 1e-3
    assert np.all(np.bincount(held_out_labels, minlength=10) > 400)  # every class held out
