"""Input pipelines: dtype, shape, value range, determinism; the real binarized MNIST when available."""

import os

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import data

SHARED_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "mnist")


def _first_batches(ds, n=2):
    return [b.numpy() for b in ds.take(n)]


def test_embedded_data():
    train = data.embedded_images("train")
    val = data.embedded_images("validation")
    assert train.shape == (5000, 28, 28, 1) and val.shape == (1000, 28, 28, 1)
    assert set(np.unique(train)) == {0, 1}
    # Real digits: about 13% of binarized-MNIST pixels are on.
    assert 0.10 < train.mean() < 0.16
    with pytest.raises(ValueError, match=r"splits \['train', 'validation'\], received split='test'"):
        data.embedded_images("test")


def test_pipeline_dtype_shape_range_and_determinism():
    ds = data.make_dataset("embedded", "train", batch_size=32, seed=3)
    batch = next(iter(ds))
    assert batch.dtype == tf.float32 and batch.shape == (32, 28, 28, 1)
    assert set(np.unique(batch.numpy())) <= {0.0, 1.0}
    a = _first_batches(data.make_dataset("embedded", "train", batch_size=32, seed=3))
    b = _first_batches(data.make_dataset("embedded", "train", batch_size=32, seed=3))
    c = _first_batches(data.make_dataset("embedded", "train", batch_size=32, seed=4))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_dynamic_binarization_is_fresh_each_pass_and_seeded():
    grey = tf.data.Dataset.from_tensor_slices(np.full((200, 28, 28, 1), 0.3, np.float32))
    ds = data._binarize_dynamically(grey, seed=1)
    first = np.stack([x.numpy() for x in ds])
    second = np.stack([x.numpy() for x in ds])
    assert set(np.unique(first)) == {0.0, 1.0}
    assert abs(first.mean() - 0.3) < 0.01
    assert not np.array_equal(first, second)  # a new binarization on every epoch
    again = np.stack([x.numpy() for x in data._binarize_dynamically(grey, seed=1)])
    np.testing.assert_array_equal(first, again)  # the same sequence for the same seed


def test_binarized_mnist_from_tfds(shared_tfds_dir):
    ds = data.make_dataset("binarized_mnist", "validation", batch_size=500, data_dir=shared_tfds_dir, shuffle=False)
    images = np.concatenate([b.numpy() for b in ds])
    assert images.shape == (10000, 28, 28, 1) and images.dtype == np.float32
    assert set(np.unique(images)) == {0.0, 1.0}  # already binary: not divided by 255
    # The embedded subset is the first 1,000 validation images, bit for bit.
    np.testing.assert_array_equal(images[:1000], data.embedded_images("validation").astype(np.float32))
    # The independent-pixel baseline a trained model must beat.
    assert 200 < data.marginal_baseline_nll(images) < 212


def test_missing_dataset_fails_fast_with_a_clear_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'binarized_mnist' is not prepared under data_dir=.*--data_dir"):
        data.make_dataset("binarized_mnist", "train", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar'"):
        data.make_dataset("cifar", "train")


def test_missing_split(shared_tfds_dir):
    with pytest.raises(ValueError, match=r"has splits .*'validation'.*received split='test'"):
        data.make_dataset("binarized_mnist", "test", data_dir=shared_tfds_dir)


def test_training_stream_resumes_on_the_same_batches():
    stream = data.TrainingStream("embedded", 700, seed=3)
    n = stream.batches_per_pass
    assert n == 8  # 5,000 images: 7 batches of 700 and one of 100
    full = [b.numpy() for b in stream.dataset().take(2 * n + 2)]
    assert [len(b) for b in full[:n]] == [700] * 7 + [100]
    # every image once per pass, in another order each pass
    first_pass = np.concatenate(full[:n]).reshape(5000, -1)
    expected = data.embedded_images("train").reshape(5000, -1).astype(np.float32)
    assert sorted(map(bytes, first_pass.astype(np.uint8))) == sorted(map(bytes, expected.astype(np.uint8)))
    assert not np.array_equal(full[0], full[n])
    for start in (3, n, n + 1):  # resumed mid-pass, at a pass boundary, and after it
        resumed = [b.numpy() for b in stream.dataset(start).take(2)]
        for a, b in zip(full[start : start + 2], resumed):
            np.testing.assert_array_equal(a, b)
    again = data.TrainingStream("embedded", 700, seed=3).dataset(5)
    np.testing.assert_array_equal(next(iter(again)).numpy(), full[5])  # a new process: the same batches
    with pytest.raises(ValueError, match=r"start_batch must be an integer >= 0, received -1"):
        stream.dataset(-1)


@pytest.mark.parametrize("name", ["svhn_cropped", "cifar10"])
def test_colour_datasets_offline_fail_fast_saying_where_to_put_them(tmp_path, name):
    import time

    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match=rf"'{name}' is not prepared under data_dir=.*copy its {name}/ folder"):
        data.TrainingStream(name, 10, str(tmp_path), image_shape=(32, 32, 3))
    assert time.monotonic() - start < 30  # no download attempt, no hang
    assert data.COLOUR_SPLITS["validation"] == "train[95%:]"  # validated on held-out training images, not on test


def test_npz_datasets(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(6, 4, 5, 3), dtype=np.uint8)
    path = str(tmp_path / "own.npz")
    np.savez(path, train=images[:4], test=images[4:])
    assert data.held_out_split(path) == "test"  # no validation array: validate on test
    stream = data.TrainingStream(path, 4, image_shape=(4, 5, 3))
    np.testing.assert_allclose(np.sort(next(iter(stream.dataset())).numpy().ravel()), np.sort(images[:4].ravel() / 255.0), rtol=1e-6)
    np.savez(path, train=images.astype(np.float32))
    with pytest.raises(ValueError, match=r"must be non-empty 8-bit images, uint8 \[n, height, width, channels\], received float32"):
        data.make_dataset(path, "train")
    with pytest.raises(ValueError, match=r"has arrays \['train'\], received split='validation'"):
        data.make_dataset(path, "validation")
    with pytest.raises(FileNotFoundError, match=r"does not exist \(expected an .npz of uint8 arrays per split\)"):
        data.TrainingStream(str(tmp_path / "none.npz"))


def test_image_shapes_must_fit_the_model():
    with pytest.raises(ValueError, match=r"'embedded' has images of shape \[28, 28, 1\], but the model expects \[60, 60, 1\]"):
        data.TrainingStream("embedded", 10, image_shape=(60, 60, 1))
    with pytest.raises(ValueError, match=r"'cifar10' has images of shape \[32, 32, 3\], but the model expects \[32, 32, 1\]"):
        data.check_image_shape("cifar10", (32, 32, 3), (32, 32, 1))
    data.check_image_shape("svhn_cropped", (32, 32, 3), (64, 64, 3))  # colour data is resized: no error
    ds = tf.data.Dataset.from_tensor_slices(np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32))
    resized = next(iter(data.resize_images(ds, (64, 64, 3)))).numpy()
    assert resized.shape == (64, 64, 3) and 0.0 <= resized.min() and resized.max() <= 1.0


def test_two_digit_mnist_pipeline(tmp_path):
    from test_mnist_scenes import write_mnist_dir

    write_mnist_dir(str(tmp_path), n=30)
    stream = data.TrainingStream("two_digit_mnist", 16, str(tmp_path), seed=1, image_shape=(60, 60, 1))
    assert stream.count == 2.5 * 24  # 2.5 scenes per training digit (24 of the 30)
    first = next(iter(stream.dataset())).numpy()
    assert first.shape == (16, 60, 60, 1) and set(np.unique(first)) <= {0.0, 1.0}
    # two 10x10 squares of grey level >= 100 per scene, binarized with p = level / 255: 2 x 40-80 pixels on
    assert 40 < first.sum(axis=(1, 2, 3)).mean() < 160
    again = next(iter(data.TrainingStream("two_digit_mnist", 16, str(tmp_path), seed=1).dataset())).numpy()
    np.testing.assert_array_equal(first, again)
    val = next(iter(data.make_dataset("two_digit_mnist", "validation", 8, str(tmp_path), shuffle=False)))
    assert val.shape == (6, 60, 60, 1)  # one scene per held-out digit (6 of the 30)


def test_mnist_reads_the_idx_files_and_binarizes_them_afresh_each_pass(tmp_path):
    from test_mnist_scenes import write_mnist_dir

    write_mnist_dir(str(tmp_path), n=40, with_train=True)  # no tfds `mnist` here: the IDX files are read
    stream = data.TrainingStream("mnist", 40, str(tmp_path), seed=2, image_shape=(28, 28, 1))
    assert stream.count == 40  # all 40 training digits (fewer than the 55,000 that make `train`)
    first, second = (b.numpy() for b in stream.dataset().take(2))
    assert first.shape == (40, 28, 28, 1) and set(np.unique(first)) <= {0.0, 1.0}
    # each digit is a 10x10 square of grey level 100 + i: about (100 + i) / 255 of its 100 pixels on
    expected = sum((100 + i) / 255 * 100 for i in range(40))
    assert abs(first.sum() - expected) < 0.05 * expected
    assert not np.array_equal(np.sort(first.sum(axis=(1, 2, 3))), np.sort(second.sum(axis=(1, 2, 3))))
    with pytest.raises(ValueError, match=r"splits \['train', 'validation', 'test'\], received split='valid'"):
        data.make_dataset("mnist", "valid", 8, str(tmp_path))


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(SHARED_MNIST, "train-images-idx3-ubyte.gz")),
    reason="the MNIST IDX files are not in ../shared/data/mnist",
)
def test_mnist_from_the_real_idx_files():
    held_out = np.concatenate([b.numpy() for b in data.make_dataset("mnist", "validation", 1000, SHARED_MNIST, shuffle=False)])
    assert held_out.shape == (5000, 28, 28, 1) and set(np.unique(held_out)) == {0.0, 1.0}
    # Bernoulli(grey / 255) pixels: about 13% on (the grey-level mean is 33.3 / 255)
    assert 0.12 < held_out.mean() < 0.14
    test = data.make_dataset("mnist", "test", 1000, SHARED_MNIST, shuffle=False)
    assert sum(int(b.shape[0]) for b in test) == 10000
