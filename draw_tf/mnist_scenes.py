"""MNIST digits and the scenes the paper builds from them: cluttered 100x100 and two-digit 60x60.

Digits come from the MNIST IDX files (`t10k-images-idx3-ubyte.gz`, ...) in a directory, or from
tfds `mnist` prepared under a tfds data_dir. With only the 10,000 test digits at hand (the offline
copy in ../shared/data/mnist), a fixed permutation of them is split 8,000 `train` / 2,000
`validation` (there is no `test` then); with the training files too, `train` is the first 55,000
training digits, `validation` the last 5,000 and `test` the 10,000 test digits. A scene only ever
uses digits of its own split.

Scenes are uint8 grey levels, made with numpy from a seed alone (same seed, same scenes); digits
and fragments are combined by a pixel-wise maximum.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FULL_TRAIN_SIZE = 55_000  # of the 60,000 training digits; the other 5,000 are `validation`
TEST_ONLY_TRAIN_FRACTION = 0.8  # of the test digits to train on, when they are all there is (8,000 of 10,000)
DIGIT_SIZE = 28


def read_idx(path):
    """The array stored in an IDX file (gzipped or not): uint8 images [n, 28, 28] or labels [n]."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(
            f"{path!r} is not an IDX file of unsigned bytes: expected the magic number 0x0000080N, received 0x{data[:4].hex()}."
        )
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path!r} is truncated: header says {dims} ({int(np.prod(dims))} bytes), found {body.size}.")
    return body.reshape(dims)


def _idx_dir(data_dir):
    for candidate in (data_dir, os.path.join(data_dir, "mnist")):
        if os.path.isfile(os.path.join(candidate, IDX_FILES["test"][0])):
            return candidate
    return None


def mnist_digits(split="train", data_dir=None):
    """(images uint8 [n, 28, 28], labels int64 [n]) of a split: `train`, `validation` or `test`.

    `data_dir` holds the MNIST IDX files (directly or in `mnist/`), or is a tfds data_dir with
    `mnist` prepared (default: $TFDS_DATA_DIR, then ~/tensorflow_datasets).
    """
    if split not in ("train", "validation", "test"):
        raise ValueError(f"MNIST scenes have splits ['train', 'validation', 'test'], received split={split!r}.")
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    idx_dir = _idx_dir(data_dir)
    if idx_dir is not None:
        files = {part: [os.path.join(idx_dir, f) for f in names] for part, names in IDX_FILES.items()}
        if all(os.path.isfile(f) for f in files["train"]):  # the full MNIST
            images, labels = (read_idx(f) for f in files["test" if split == "test" else "train"])
            return _full_split(images, labels.astype(np.int64), split)
        if split == "test":
            raise ValueError(
                f"Only the MNIST test digits are in {idx_dir!r}: they are split into 'train' and 'validation' "
                f"(80/20), so there is no 'test' split. Add {IDX_FILES['train'][0]} and {IDX_FILES['train'][1]} for it."
            )
        images, labels = (read_idx(f) for f in files["test"])
        order = np.random.default_rng(0).permutation(len(images))
        cut = int(round(TEST_ONLY_TRAIN_FRACTION * len(images)))
        rows = order[:cut] if split == "train" else order[cut:]
        return images[rows], labels[rows].astype(np.int64)
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist", data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"No MNIST digits under data_dir={data_dir!r}: expected the IDX files "
            f"({IDX_FILES['test'][0]}, {IDX_FILES['test'][1]}, optionally the train-* pair) in it or in "
            "its mnist/ folder, or tfds 'mnist' prepared there (tfds.builder('mnist').download_and_prepare())."
        )
    arrays = tfds.as_numpy(builder.as_dataset(split="test" if split == "test" else "train", batch_size=-1))
    return _full_split(arrays["image"][..., 0], arrays["label"].astype(np.int64), split)


def _full_split(images, labels, split):
    """`split` of the full MNIST, given the test digits for `test` and the training digits otherwise."""
    if split == "train":
        return images[:FULL_TRAIN_SIZE], labels[:FULL_TRAIN_SIZE]
    if split == "validation":
        return images[FULL_TRAIN_SIZE:], labels[FULL_TRAIN_SIZE:]
    return images, labels


def _paste_max(canvas, patch, top, left):
    h, w = patch.shape
    region = canvas[top : top + h, left : left + w]
    np.maximum(region, patch, out=region)


def cluttered_scenes(digits, labels, size=100, num_fragments=8, fragment_size=8, seed=0):
    """One scene per digit, in order: the 28x28 digit at a uniformly random position of a
    `size` x `size` image, plus `num_fragments` random `fragment_size` crops of other digits of the
    same set at random positions (the cluttered translated MNIST of Mnih et al. 2014 used in the
    paper's Table 1). Returns (uint8 [n, size, size, 1], labels)."""
    digits = np.asarray(digits, np.uint8)
    n = len(digits)
    if digits.ndim != 3 or digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or n < 2:
        raise ValueError(f"digits must be at least two 28x28 images [n, 28, 28], received shape {digits.shape}.")
    if len(labels) != n:
        raise ValueError(f"Need one label per digit: {n} digits, received {len(labels)} labels.")
    if not DIGIT_SIZE <= size or not 1 <= fragment_size <= DIGIT_SIZE:
        raise ValueError(f"Need size >= 28 and 1 <= fragment_size <= 28, received size={size}, fragment_size={fragment_size}.")
    rng = np.random.default_rng(seed)
    scenes = np.zeros((n, size, size), np.uint8)
    positions = _digit_positions(rng, n, size)
    sources = (np.arange(n)[:, None] + rng.integers(1, n, size=(n, num_fragments))) % n  # never the digit itself
    crops = rng.integers(0, DIGIT_SIZE - fragment_size + 1, size=(n, num_fragments, 2))
    places = rng.integers(0, size - fragment_size + 1, size=(n, num_fragments, 2))
    for i in range(n):
        for j in range(num_fragments):
            (cy, cx), (py, px) = crops[i, j], places[i, j]
            fragment = digits[sources[i, j], cy : cy + fragment_size, cx : cx + fragment_size]
            _paste_max(scenes[i], fragment, py, px)
        _paste_max(scenes[i], digits[i], *positions[i])
    return scenes[..., None], np.asarray(labels)


def cluttered_digit_positions(count, size=100, seed=0):
    """The (top, left) pixel corners where `cluttered_scenes(..., size=size, seed=seed)` pastes its
    `count` digits (the first thing it draws, so they do not depend on the clutter): int [count, 2]."""
    return _digit_positions(np.random.default_rng(seed), count, size)


def _digit_positions(rng, count, size):
    return rng.integers(0, size - DIGIT_SIZE + 1, size=(count, 2))


def two_digit_scenes(digits, count, size=60, seed=0):
    """`count` images of `size` x `size`, each holding two random digits of `digits` at uniformly
    random positions (they may overlap), as in the paper's two-digit MNIST. uint8 [count, size, size, 1]."""
    digits = np.asarray(digits, np.uint8)
    if digits.ndim != 3 or digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE) or len(digits) == 0:
        raise ValueError(f"digits must be 28x28 images [n, 28, 28], received shape {digits.shape}.")
    if size < DIGIT_SIZE:
        raise ValueError(f"size must be at least 28 to hold a digit, received {size}.")
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(digits), size=(count, 2))
    positions = rng.integers(0, size - DIGIT_SIZE + 1, size=(count, 2, 2))
    scenes = np.zeros((count, size, size), np.uint8)
    for i in range(count):
        for k in range(2):
            _paste_max(scenes[i], digits[chosen[i, k]], *positions[i, k])
    return scenes[..., None]
