"""The variational loss in nats: reconstruction, KL, train_step, gradients and the IWAE bound."""

import math

import keras
import numpy as np
import tensorflow as tf

from draw_tf import Draw
from draw_tf.model import bernoulli_nll


def _binary_images(config, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(n, *config.image_shape)).astype(np.float32)


def test_reconstruction_is_bernoulli_nll_in_nats(tiny_config):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, *tiny_config.image_shape)).astype(np.float32)
    x = _binary_images(tiny_config, 4)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(4, -1).sum(-1)
    np.testing.assert_allclose(bernoulli_nll(tf.constant(logits), tf.constant(x)).numpy(), expected, rtol=1e-5)


def test_untrained_canvas_costs_log2_per_pixel(tiny_config):
    # With zero-initialised patch weights the canvas stays 0, so every pixel costs log 2 nats.
    model = Draw(tiny_config)
    for w in model.cell.write.patch.weights:
        w.assign(tf.zeros_like(w))
    rec, kl = model.negative_elbo_terms(_binary_images(tiny_config, 3))
    np.testing.assert_allclose(rec.numpy(), math.log(2) * np.prod(tiny_config.image_shape), rtol=1e-5)
    assert np.all(kl.numpy() > 0)


def test_train_step_reports_loss_terms_and_updates_weights(tiny_config):
    model = Draw(tiny_config, seed=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = _binary_images(tiny_config, 8)
    before = [w.numpy().copy() for w in model.trainable_weights]
    logs = model.train_on_batch(x, return_dict=True)
    assert set(logs) == {"loss", "reconstruction", "kl"}
    assert logs["loss"] == pytest_approx(logs["reconstruction"] + logs["kl"])
    assert logs["kl"] > 0
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-4)


def test_gradients_are_finite_and_nonzero(tiny_config):
    for config in (tiny_config, tiny_config.replace(read_size=0, write_size=0)):
        model = Draw(config, seed=1)
        x = tf.constant(_binary_images(config, 4))
        with tf.GradientTape() as tape:
            rec, kl = model.negative_elbo_terms(x)
            loss = tf.reduce_mean(rec + kl)
        grads = tape.gradient(loss, model.trainable_weights)
        for w, g in zip(model.trainable_weights, grads):
            assert g is not None, w.path
            assert np.all(np.isfinite(g.numpy())), w.path
            assert np.any(g.numpy() != 0), w.path


def test_gradient_clipping_bounds_the_update(tiny_config):
    # With SGD(lr=1) the update equals the clipped gradient, so its global norm is at most the clip.
    config = tiny_config.replace(grad_clip_norm=0.5)
    model = Draw(config, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(1.0))
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.train_on_batch(_binary_images(config, 4))
    norm = math.sqrt(sum(float(np.sum((b - w.numpy()) ** 2)) for b, w in zip(before, model.trainable_weights)))
    assert norm <= 0.5 + 1e-4 and norm > 0.4


def test_importance_weighted_bound_equals_the_likelihood_when_z_is_ignored(tiny_config):
    # Posterior = prior (zero posterior weights) and a decoder that ignores z (zero input kernel):
    # every importance weight is p(x | c_T) with the same c_T, so for every K the bound is exactly
    # -log p(x) = the reconstruction term. A missing "- log K" would add log K.
    model = Draw(tiny_config, seed=0)
    rng = np.random.default_rng(3)
    for w in model.trainable_weights:
        w.assign(rng.normal(scale=0.3, size=w.shape).astype(np.float32))
    for w in (model.cell.posterior.kernel, model.cell.posterior.bias, model.cell.decoder.kernel):
        w.assign(np.zeros(w.shape, np.float32))
    x = _binary_images(tiny_config, 3, seed=5)
    rec, kl = model.negative_elbo_terms(x)
    np.testing.assert_allclose(kl.numpy(), 0.0, atol=1e-6)
    for k in (1, 7, 100):
        np.testing.assert_allclose(model.importance_weighted_nll(x, k, chunk_size=30).numpy(), rec.numpy(), rtol=1e-5)


def test_importance_weighted_bound_tightens_with_k(tiny_config):
    model = Draw(tiny_config, seed=0)
    rng = np.random.default_rng(4)
    for w in model.trainable_weights:  # a posterior far from the prior: a large gap between the bounds
        w.assign(w.numpy() + rng.normal(scale=0.5 / np.sqrt(max(w.shape[0], 1)), size=w.shape).astype(np.float32))
    x = _binary_images(tiny_config, 2, seed=5)
    rec, kl = model.negative_elbo_terms(np.repeat(x, 400, axis=0))
    elbo = (rec + kl).numpy().reshape(2, 400).mean(axis=1)
    # K = 1 is an unbiased one-sample estimate of the negative ELBO (sampled instead of analytic KL).
    k1 = np.stack([model.importance_weighted_nll(x, 1).numpy() for _ in range(200)]).mean(axis=0)
    np.testing.assert_allclose(k1, elbo, rtol=0.01)
    # A larger K gives a tighter (smaller) bound on -log p(x): here by 0.7 and 2.2 nats.
    k50 = model.importance_weighted_nll(x, 50, chunk_size=20).numpy()
    assert np.all(k50 < elbo - 0.3), (k50, elbo)
