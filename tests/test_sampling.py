"""Sampling from the prior, as a user relies on it: a seed gives the same images on every call,
`noise_from_seeds` gives each image from its own seed whatever else is in the batch, different
seeds give different images, and the images are probabilities of the model's shape, the last
canvas of the drawing."""

import numpy as np
import pytest

from draw_tf import Draw


@pytest.fixture(scope="module")
def model(tiny_config, perturb_weights):
    return perturb_weights(Draw(tiny_config, seed=0))  # not the initial weights: every head matters


def _images(out):
    return out["images"].numpy()


def _assert_all_differ(a, b):
    """Every image of `a` differs from the image of `b` at the same index."""
    for i, (x, y) in enumerate(zip(a, b)):
        assert np.abs(x - y).max() > 1e-3, f"image {i} is the same"


def test_the_same_seed_gives_the_same_images_on_every_call(model):
    first = model.sample(5, seed=7)
    np.testing.assert_array_equal(model.prior_noise(5, seed=7).numpy(), model.prior_noise(5, seed=7).numpy())
    model.sample(3)  # unseeded draws in between change nothing
    second = model.sample(5, seed=7)
    for key in ("images", "canvases", "write_windows"):
        np.testing.assert_array_equal(first[key].numpy(), second[key].numpy(), err_msg=key)
    again = model.sample(5, seed=7, return_sequences=False)
    assert set(again) == {"images"}
    np.testing.assert_allclose(_images(again), _images(first), atol=1e-6)


def test_different_seeds_and_no_seed_give_different_images(model):
    a, b = _images(model.sample(5, seed=7)), _images(model.sample(5, seed=8))
    _assert_all_differ(a, b)
    _assert_all_differ(a, np.roll(a, 1, axis=0))  # the images of one batch differ from each other
    _assert_all_differ(_images(model.sample(5)), _images(model.sample(5)))  # fresh noise without a seed
    c, d = model.noise_from_seeds([1, 2]), model.noise_from_seeds([2, 1])
    _assert_all_differ(_images(model.generate(c)), _images(model.generate(d)))


def test_an_image_depends_on_its_own_seed_alone(model):
    """`noise_from_seeds` (the SavedModel's `sample` signature) promises batching independence:
    image i of a batch of 8 seeds is the image of the same seed in a batch of 3, or alone."""
    seeds = np.arange(100, 108, dtype=np.int64)
    noise = model.noise_from_seeds(seeds).numpy()
    big = _images(model.generate(noise))
    picked = [5, 2, 5]
    small_noise = model.noise_from_seeds(seeds[picked]).numpy()
    np.testing.assert_array_equal(small_noise, noise[picked])
    small = _images(model.generate(small_noise))
    # Equal to float rounding: a batch of another size may take other matmul kernels.
    np.testing.assert_allclose(small, big[picked], atol=1e-6)
    np.testing.assert_allclose(_images(model.generate(model.noise_from_seeds(seeds[6:7]))), big[6:7], atol=1e-6)
    np.testing.assert_allclose(small[0], small[2], atol=1e-6)  # the same seed twice in one batch


def test_the_noise_is_standard_normal(model):
    cfg = model.config
    for noise in (model.prior_noise(500, seed=3).numpy(), model.noise_from_seeds(np.arange(500)).numpy()):
        assert noise.shape == (500, cfg.time_steps, cfg.z_size) and noise.dtype == np.float32
        values = noise.ravel()  # 6,000 values: mean within ~5 standard errors of 0, std within 5%
        assert abs(values.mean()) < 0.07 and abs(values.std() - 1) < 0.05, (values.mean(), values.std())
        assert len(np.unique(noise.reshape(500, -1), axis=0)) == 500  # no two images share their noise


def test_images_are_probabilities_and_the_last_canvas(model):
    cfg = model.config
    out = model.sample(4, seed=1)
    assert out["images"].shape == (4, *cfg.image_shape)
    assert out["canvases"].shape == (4, cfg.time_steps, *cfg.image_shape)
    assert out["write_windows"].shape == (4, cfg.time_steps, 5)
    images, canvases = _images(out), out["canvases"].numpy()
    assert 0 <= canvases.min() and canvases.max() <= 1 and 0 <= images.min() and images.max() <= 1
    assert images.std() > 0.01  # not a constant image
    np.testing.assert_allclose(canvases[:, -1], images, atol=1e-6)
    assert not np.allclose(canvases[:, 0], images, atol=1e-3)  # the earlier canvases are steps on the way


def test_reconstruct(tiny_config):
    model = Draw(tiny_config)
    x = (np.random.default_rng(0).random((3, *tiny_config.image_shape)) > 0.5).astype(np.float32)
    out = model.reconstruct(x, return_sequences=True)
    assert out["images"].shape == x.shape and out["negative_elbo"].shape == (3,)
    assert out["canvases"].shape == (3, tiny_config.time_steps, *tiny_config.image_shape)
    assert out["read_windows"].shape == (3, tiny_config.time_steps, 5)
    assert out["kl"].shape == (3, tiny_config.time_steps)
