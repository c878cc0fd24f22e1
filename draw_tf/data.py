"""Input pipelines: tfds `binarized_mnist`, `mnist` and two-digit MNIST with dynamic binarization,
tfds `svhn_cropped` and `cifar10` (colour), your own 8-bit images in an .npz file, and an embedded
subset.

Every pipeline yields float32 images [batch, H, W, C] in [0, 1]: MNIST-like data binary (binarized
MNIST is already 0/1 and is only cast, never divided by 255), colour data 8-bit / 255.
"""

from __future__ import annotations

import os
from importlib import resources

import numpy as np
import tensorflow as tf

DATASETS = ("embedded", "binarized_mnist", "mnist", "two_digit_mnist", "svhn_cropped", "cifar10")
BINARIZED_DYNAMICALLY = ("mnist", "two_digit_mnist")  # grey levels, a fresh Bernoulli sample per pass
COLOUR = ("svhn_cropped", "cifar10")  # 32x32x3 8-bit images
# tfds splits behind ours for the colour datasets, which have no validation split of their own
COLOUR_SPLITS = {"train": "train[:95%]", "validation": "train[95%:]", "test": "test"}
TWO_DIGIT_SIZE = 60
TWO_DIGIT_SCENES_PER_DIGIT = {"train": 2.5, "validation": 1.0, "test": 1.0}
TWO_DIGIT_MAX_SCENES = 60_000  # 216 MB of uint8 scenes
EMBEDDED_FILE = "binarized_mnist_subset.npz"
EMBEDDED_SPLITS = ("train", "validation")


def held_out_split(name):
    """The split to validate on: `validation`, or `test` for an .npz file that has no `validation`."""
    if name.endswith(".npz") and os.path.isfile(name):
        with np.load(name) as arrays:
            if "validation" not in arrays.files and "test" in arrays.files:
                return "test"
    return "validation"


def default_data_dir():
    """`$TFDS_DATA_DIR` if set, else tfds's own default (~/tensorflow_datasets)."""
    return os.environ.get("TFDS_DATA_DIR") or None


def embedded_images(split="train"):
    """The binarized-MNIST subset shipped in the package (no download): uint8 [n, 28, 28, 1] of 0/1.

    `train` holds the first 5,000 training images and `validation` the first 1,000 validation images
    of tfds's `binarized_mnist`.
    """
    if split not in EMBEDDED_SPLITS:
        raise ValueError(f"The embedded dataset has splits {list(EMBEDDED_SPLITS)}, received split={split!r}.")
    with resources.files("draw_tf").joinpath("assets", EMBEDDED_FILE).open("rb") as f:
        packed = np.load(f)
        bits, count = packed[split], int(packed[f"{split}_count"])
    images = np.unpackbits(bits, axis=-1, count=28 * 28)[:count]
    return images.reshape(count, 28, 28, 1)


def _tfds_load(name, split, data_dir):
    import tensorflow_datasets as tfds

    data_dir = data_dir or default_data_dir()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for an unknown or unreadable dataset
        raise FileNotFoundError(f"Cannot open tfds dataset {name!r} under data_dir={data_dir!r}: {e}") from e
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"tfds dataset {name!r} is not prepared under data_dir={builder.data_dir!r}. Prepare it with "
            f"tensorflow-datasets (tfds.builder({name!r}).download_and_prepare()); without internet, prepare "
            f"it on a machine that has it and copy its {name}/ folder into a data_dir here. Pass that data_dir (flag "
            "--data_dir or $TFDS_DATA_DIR). Use dataset='embedded' to run without any download."
        )
    available = list(builder.info.splits.keys())
    base = split.split("[")[0]
    if base not in available:
        raise ValueError(f"tfds dataset {name!r} under {builder.data_dir!r} has splits {available}, received split={split!r}.")
    return builder.as_dataset(split=split, shuffle_files=False)


def _two_digit_images(split, data_dir):
    from draw_tf import mnist_scenes

    digits, _ = mnist_scenes.mnist_digits(split, data_dir)
    count = min(int(TWO_DIGIT_SCENES_PER_DIGIT[split] * len(digits)), TWO_DIGIT_MAX_SCENES)
    seed = {"train": 0, "validation": 1, "test": 2}[split]
    scenes = mnist_scenes.two_digit_scenes(digits, count, TWO_DIGIT_SIZE, seed=seed)
    return tf.data.Dataset.from_tensor_slices(scenes).map(lambda x: tf.cast(x, tf.float32) / 255.0)


def _mnist_images(split, data_dir):
    """Grey-level MNIST digits of `split` in [0, 1]: from the IDX files in `data_dir` (or its
    mnist/ folder), else from tfds `mnist` prepared there. Both give the same splits: `train` the
    first 55,000 training digits, `validation` the last 5,000, `test` the 10,000 test digits
    (see draw_tf.mnist_scenes.mnist_digits)."""
    from draw_tf import mnist_scenes

    digits, _ = mnist_scenes.mnist_digits(split, data_dir)
    return tf.data.Dataset.from_tensor_slices(digits[..., None]).map(lambda x: tf.cast(x, tf.float32) / 255.0)


def npz_images(path, split):
    """uint8 images [n, H, W, C] of `split` from an .npz file of your own data, which holds one
    array per split (`train`, and `validation` or `test`) of 8-bit values."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Dataset file {path!r} does not exist (expected an .npz of uint8 arrays per split).")
    with np.load(path) as arrays:
        if split not in arrays.files:
            raise ValueError(f"{path!r} has arrays {sorted(arrays.files)}, received split={split!r}.")
        images = arrays[split]
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"{path!r}[{split!r}] must be non-empty 8-bit images, uint8 [n, height, width, channels], "
            f"received {images.dtype} of shape {list(images.shape)}."
        )
    return images


def _raw_images(name, split, data_dir):
    """Unbatched float32 images [H, W, C]: 0/1 for binarized data, grey levels or colours in [0, 1]
    otherwise (8-bit / 255)."""
    if name.endswith(".npz"):
        images = npz_images(name, split)
        return tf.data.Dataset.from_tensor_slices(images).map(lambda x: tf.cast(x, tf.float32) / 255.0)
    if name == "two_digit_mnist":
        # data_dir: the MNIST IDX files or a tfds data_dir with mnist (see draw_tf.mnist_scenes)
        return _two_digit_images(split, data_dir)
    if name in COLOUR:  # validation: the last 5% of tfds's train split (trained on the first 95%)
        if split not in COLOUR_SPLITS:
            raise ValueError(f"{name!r} has splits {list(COLOUR_SPLITS)}, received split={split!r}.")
        ds = _tfds_load(name, COLOUR_SPLITS[split], data_dir)
        return ds.map(lambda ex: tf.cast(ex["image"], tf.float32) / 255.0, num_parallel_calls=tf.data.AUTOTUNE)
    if name == "embedded":
        return tf.data.Dataset.from_tensor_slices(embedded_images(split)).map(lambda x: tf.cast(x, tf.float32))
    if name == "binarized_mnist":
        ds = _tfds_load(name, split, data_dir)
        return ds.map(lambda ex: tf.cast(ex["image"], tf.float32), num_parallel_calls=tf.data.AUTOTUNE)
    if name == "mnist":
        return _mnist_images(split, data_dir)
    raise ValueError(f"Unknown dataset {name!r}; expected one of {list(DATASETS)}.")


def _binarize_dynamically(ds, seed):
    """Fresh Bernoulli(pixel) samples on every pass over `ds`, the sequence fixed by `seed`."""
    noise = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def binarize(image, r):
        u = tf.random.stateless_uniform(tf.shape(image), seed=tf.stack([r, tf.constant(seed, tf.int64)]))
        return tf.cast(u < image, tf.float32)

    return tf.data.Dataset.zip((ds, noise)).map(binarize, num_parallel_calls=tf.data.AUTOTUNE)


def check_image_shape(name, shape, image_shape):
    """Raises unless images of `shape` [H, W, C] can feed a model of `image_shape`. The channels
    must match, and the height and width too except for the colour datasets, which are resized
    (e.g. the 32x32 `svhn_cropped` to the paper's 64x64 SVHN model)."""
    if image_shape is None or tuple(shape) == tuple(image_shape):
        return
    if shape[-1] != image_shape[-1] or name not in COLOUR:
        raise ValueError(
            f"Dataset {name!r} has images of shape {list(shape)}, but the model expects {list(image_shape)} "
            "(height, width, channels): pick a preset made for this data (see draw_tf.PRESETS)."
        )


def _resize_target(shape, image_shape):
    """[height, width] to resize images of `shape` to for a model of `image_shape`, or None."""
    if image_shape is None or tuple(shape[:2]) == tuple(image_shape[:2]):
        return None
    return list(image_shape[:2])


def resize(images, size):
    """Bilinear, antialiased resize of images [..., H, W, C] in [0, 1] to `size`, kept in [0, 1]."""
    return tf.clip_by_value(tf.image.resize(images, size, antialias=True), 0.0, 1.0)


def resize_images(ds, image_shape):
    """Images resized (bilinear, antialiased) to `image_shape`'s height and width when they differ."""
    size = _resize_target(ds.element_spec.shape, image_shape)
    if size is None:
        return ds
    return ds.map(lambda x: resize(x, size), num_parallel_calls=tf.data.AUTOTUNE)


def load_images(name="binarized_mnist", split="train", data_dir=None, seed=0, cache=False, image_shape=None):
    """An unbatched dataset of float32 images [H, W, C] in [0, 1].

    `mnist` and `two_digit_mnist` are binarized dynamically: each pass draws fresh
    Bernoulli(pixel / 255) samples, and the sequence is determined by `seed`. With `cache`, the
    decoded images are cached in memory (before the dynamic binarization). With `image_shape`
    (the model's), the channels are checked and the images resized to its height and width.
    """
    ds = _raw_images(name, split, data_dir)
    check_image_shape(name, ds.element_spec.shape, image_shape)
    ds = resize_images(ds, image_shape)
    if cache:
        ds = ds.cache()
    if name in BINARIZED_DYNAMICALLY:
        ds = _binarize_dynamically(ds, seed)
    return ds


def make_dataset(
    name="binarized_mnist",
    split="train",
    batch_size=100,
    data_dir=None,
    shuffle=True,
    seed=0,
    drop_remainder=False,
    cache=True,
    image_shape=None,
):
    """Batched, cached, shuffled (deterministically with `seed`) and prefetched images."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, received {batch_size!r}.")
    ds = load_images(name, split, data_dir, seed, cache=cache, image_shape=image_shape)
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


class TrainingStream:
    """Endless, resumable training batches: `TrainingStream(...).dataset(start_batch)`.

    Pass e over the split is a full permutation of it drawn from (`seed`, e) alone, cut into
    batches of `batch_size` (the last one may be smaller); for `mnist` the Bernoulli binarization
    of each batch is drawn from the same numbers. `dataset(k)` starts at batch k counted from pass
    0, so a run resumed at global step k sees exactly the batches the uninterrupted run saw from
    step k on. The split is loaded once and held in memory as uint8 (39 MB for the 50,000 MNIST
    training images); `batches_per_pass` is the number of batches in one pass. With `image_shape`
    (the model's), the channels are checked and each batch is resized to its height and width (the
    table keeps the source size).
    """

    def __init__(self, name="binarized_mnist", batch_size=100, data_dir=None, seed=0, split="train", image_shape=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, received {batch_size!r}.")
        raw = _raw_images(name, split, data_dir)
        check_image_shape(name, raw.element_spec.shape, image_shape)
        chunks = [np.round(c * 255.0).astype(np.uint8) for c in raw.batch(8192).as_numpy_iterator()]
        if not chunks:
            raise ValueError(f"The {split!r} split of {name!r} is empty.")
        self.name, self.batch_size, self.seed = name, batch_size, seed
        self.resize_to = _resize_target(raw.element_spec.shape, image_shape)
        # [n, H, W, C] uint8: 0/255 for binarized data, grey levels for mnist
        self.table = tf.constant(np.concatenate(chunks))
        self.count = int(self.table.shape[0])
        self.batches_per_pass = -(-self.count // batch_size)

    def mean_image(self, limit=None):
        """The mean of the first `limit` training images (all by default), float32 [H, W, C] in
        [0, 1] at the model's size; grey levels for the dynamically binarized datasets."""
        mean = np.mean(self.table.numpy()[:limit], axis=0, dtype=np.float64) / 255.0
        mean = tf.constant(mean, tf.float32)
        return mean if self.resize_to is None else resize(mean[None], self.resize_to)[0]

    def dataset(self, start_batch=0):
        """The stream from batch `start_batch` on (batch k of pass e is number e * batches_per_pass + k)."""
        if isinstance(start_batch, bool) or not isinstance(start_batch, int) or start_batch < 0:
            raise ValueError(f"start_batch must be an integer >= 0, received {start_batch!r}.")
        table, count, batch_size, resize_to = self.table, self.count, self.batch_size, self.resize_to
        seed = tf.constant(self.seed, tf.int64)
        binarize = self.name in BINARIZED_DYNAMICALLY
        first_pass, offset = divmod(start_batch, self.batches_per_pass)

        def one_pass(index):
            order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=tf.stack([seed, index]))
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(lambda rows: (rows, index))

        def images(rows, index):
            x = tf.cast(tf.gather(table, rows), tf.float32) / 255.0
            if resize_to is not None:
                x = resize(x, resize_to)
            if binarize:  # a fresh binarization per pass, fixed by (seed, pass, first row)
                u = tf.random.stateless_uniform(tf.shape(x), seed=tf.stack([seed, index * count + rows[0]]))
                x = tf.cast(u < x, tf.float32)
            return x

        stream = tf.data.Dataset.range(first_pass, 2**62).flat_map(one_pass).skip(offset)
        return stream.map(images, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def marginal_baseline_nll(images):
    """Nats per image of the best independent-pixel model fitted to `images` themselves.

    A trained DRAW must beat it by far (about 206 nats on binarized MNIST).
    """
    x = np.asarray(images, dtype=np.float64).reshape(len(images), -1)
    p = np.clip(x.mean(axis=0), 1e-6, 1 - 1e-6)
    return float(-(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1).mean())
