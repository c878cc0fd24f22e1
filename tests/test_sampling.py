"""Sampling from the prior: shapes, ranges and determinism with a seed."""

import numpy as np

from draw_tf import Draw


def test_sample_is_reproducible_with_a_seed(tiny_config):
    model = Draw(tiny_config)
    a = model.sample(5, seed=7)
    b = model.sample(5, seed=7)
    c = model.sample(5, seed=8)
    np.testing.assert_array_equal(a["images"].numpy(), b["images"].numpy())
    assert not np.allclose(a["images"].numpy(), c["images"].numpy())


def test_sample_outputs(tiny_config):
    cfg = tiny_config
    out = Draw(cfg).sample(4, seed=1)
    assert out["images"].shape == (4, *cfg.image_shape)
    assert out["canvases"].shape == (4, cfg.time_steps, *cfg.image_shape)
    assert out["write_windows"].shape == (4, cfg.time_steps, 5)
    images = out["images"].numpy()
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_allclose(out["canvases"][:, -1].numpy(), images, rtol=1e-6)


def test_generate_from_given_noise_matches_sample(tiny_config):
    model = Draw(tiny_config)
    noise = model.prior_noise(3, seed=11)
    np.testing.assert_allclose(
        model.generate(noise, return_sequences=False)["images"].numpy(), model.sample(3, seed=11)["images"].numpy()
    )


def test_reconstruct(tiny_config):
    model = Draw(tiny_config)
    x = (np.random.default_rng(0).random((3, *tiny_config.image_shape)) > 0.5).astype(np.float32)
    out = model.reconstruct(x, return_sequences=True)
    assert out["images"].shape == x.shape and out["negative_elbo"].shape == (3,)
    assert out["canvases"].shape == (3, tiny_config.time_steps, *tiny_config.image_shape)
    assert out["read_windows"].shape == (3, tiny_config.time_steps, 5)
    assert out["kl"].shape == (3, tiny_config.time_steps)
