"""Colour images and the 8-bit discretized logistic likelihood (next to the paper's Bernoulli)."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw, DrawConfig, attention, get_preset, likelihoods

LIKELIHOODS = ["bernoulli", "discretized_logistic"]


@pytest.fixture
def colour_config():
    return DrawConfig(
        image_height=8, image_width=8, channels=3, time_steps=3,
        encoder_size=16, decoder_size=16, z_size=4, read_size=2, write_size=3,
    )


def _numpy_probabilities(k, logits, log_scale):
    """P[k] in float64 from logistic CDF differences on the bin [k - 1/2, k + 1/2], the tails at
    0 and 255; above the mean from the survival function 1 - CDF, which keeps its precision there."""
    mean, scale = 255.0 / (1.0 + np.exp(-logits)), 255.0 * np.exp(log_scale)
    lower, upper = np.where(k <= 0, -np.inf, k - 0.5), np.where(k >= 255, np.inf, k + 0.5)
    with np.errstate(over="ignore"):
        cdf = lambda y: 1.0 / (1.0 + np.exp(-(y - mean) / scale))  # noqa: E731
        survival = lambda y: 1.0 / (1.0 + np.exp((y - mean) / scale))  # noqa: E731
        return np.where(k > mean, survival(lower) - survival(upper), cdf(upper) - cdf(lower))


def _colour_blobs(n, seed=0):
    """n 8x8x3 images, 8-bit values / 255: a coloured rectangle on a dark background."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 8, 8, 3), np.uint8) + rng.integers(0, 30, size=(n, 1, 1, 3), dtype=np.uint8)
    for image in images:
        top, left = rng.integers(0, 5, size=2)
        height, width = rng.integers(3, 6, size=2)
        image[top : top + height, left : left + width] = rng.integers(60, 256, size=3)
    return images.astype(np.float32) / 255.0


# -- the likelihood --------------------------------------------------------------------------


def test_discretized_logistic_probabilities_sum_to_one():
    # Means from exactly 0 to exactly 1 (saturated sigmoids), scales from the smallest to the largest.
    logits = np.array([-40.0, -12.0, -3.0, 0.0, 0.7, 3.0, 12.0, 40.0], np.float32)
    log_scales = np.array(
        [likelihoods.LOG_SCALE_MIN, -7.0, -4.0, math.log(0.1), 0.0, likelihoods.LOG_SCALE_MAX], np.float32
    )
    logits, log_scales = [a.ravel() for a in np.meshgrid(logits, log_scales)]
    values = np.arange(256, dtype=np.float32)[:, None]  # [256, 1] against [P] parameters
    log_p = likelihoods.discretized_logistic(tf.constant(logits), tf.constant(log_scales)).log_prob(values)
    totals = np.exp(log_p.numpy().astype(np.float64)).sum(axis=0)
    np.testing.assert_allclose(totals, 1.0, atol=1e-5)


def test_discretized_logistic_gradients_are_finite_at_extremes():
    logits = tf.constant(np.linspace(-60, 60, 41), tf.float32)[:, None]
    log_scale = tf.constant(np.linspace(-20, 20, 41), tf.float32)[None, :]  # beyond the clipping bounds too
    values = tf.constant([0.0, 1.0, 127.0, 254.0, 255.0])[:, None, None]
    with tf.GradientTape() as tape:
        tape.watch([logits, log_scale])
        log_p = likelihoods.discretized_logistic(logits, log_scale).log_prob(values)  # [5, 41, 41]
    assert np.all(np.isfinite(log_p.numpy()))
    for gradient in tape.gradient(log_p, [logits, log_scale]):
        assert np.all(np.isfinite(gradient.numpy()))


def test_discretized_logistic_nll_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(3, 2, 2, 3)).astype(np.float32)
    log_scale = rng.uniform(-5.0, -1.0, size=(2, 2, 3)).astype(np.float32)
    k = rng.integers(0, 256, size=(3, 2, 2, 3))
    k[0, 0, 0] = [0, 255, 128]  # both edge bins
    expected = -np.log(_numpy_probabilities(k, logits.astype(np.float64), log_scale.astype(np.float64)))

    def nll(values):
        images = tf.constant(values / 255.0, tf.float32)
        return likelihoods.discretized_logistic_nll(tf.constant(logits), tf.constant(log_scale), images)

    got = nll(k)
    np.testing.assert_allclose(got.numpy(), expected.reshape(3, -1).sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(nll(k + 0.3).numpy(), got.numpy(), rtol=1e-6)  # images are rounded to 8-bit values


def test_bits_per_dim(colour_config):
    assert likelihoods.bits_per_dim(3072 * math.log(2) * 4.5, 3072) == pytest.approx(4.5)
    np.testing.assert_allclose(likelihoods.bits_per_dim(np.array([0.0, 192 * math.log(2)]), 192), [0.0, 1.0])
    model = Draw(colour_config.replace(likelihood="discretized_logistic"))
    assert model.num_dims == 8 * 8 * 3
    assert float(model.bits_per_dim(tf.constant(192 * math.log(4)))) == pytest.approx(2.0)


# -- configuration ---------------------------------------------------------------------------


def test_likelihood_config_validation_and_defaults():
    expected = "likelihood must be one of 'bernoulli', 'discretized_logistic', received 'gaussian'"
    with pytest.raises(ValueError, match=expected):
        DrawConfig(likelihood="gaussian")
    with pytest.raises(ValueError, match="bernoulli"):
        Draw({**DrawConfig().to_dict(), "likelihood": None})
    old = DrawConfig().to_dict()
    del old["likelihood"]  # a config saved before the field existed
    assert DrawConfig.from_dict(old).likelihood == "bernoulli"
    logistic = get_preset("cifar10_logistic")
    assert logistic.likelihood == "discretized_logistic"
    assert logistic.replace(likelihood="bernoulli") == get_preset("cifar10")
    assert all(get_preset(name).likelihood == "bernoulli" for name in ("mnist", "svhn", "cifar10", "quick"))


# -- the colour model --------------------------------------------------------------------------


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_colour_model_shapes(colour_config, likelihood):
    config = colour_config.replace(likelihood=likelihood)
    model = Draw(config, seed=0)
    x = _colour_blobs(4)
    assert model(x).shape == (4, 8, 8, 3)
    sequences = model(x, return_sequences=True)
    assert sequences["canvases"].shape == (4, 3, 8, 8, 3) and sequences["kl"].shape == (4, 3)
    samples = model.sample(5, seed=1)
    assert samples["images"].shape == (5, 8, 8, 3) and samples["canvases"].shape == (5, 3, 8, 8, 3)
    images = samples["images"].numpy()
    assert np.all((images >= 0) & (images <= 1))
    noise = model.prior_noise(4, seed=2)
    out = model.reconstruct(x, noise=noise)
    assert out["images"].shape == (4, 8, 8, 3) and out["negative_elbo"].shape == (4,)
    rec, kl = model.negative_elbo_terms(x, noise=model.check_noise(noise))
    assert rec.shape == kl.shape == (4,) and np.all(np.isfinite(rec.numpy()))
    # reconstruct's bound (what the SavedModel serves) is the model's likelihood's
    np.testing.assert_allclose(out["negative_elbo"].numpy(), (rec + kl).numpy(), rtol=1e-5)
    assert model.importance_weighted_nll(x, 2).shape == (4,)
    bernoulli_weights = len(Draw(colour_config).trainable_weights)
    if likelihood == "discretized_logistic":
        assert model.log_scale.shape == (8, 8, 3)
        assert len(model.trainable_weights) == bernoulli_weights + 1
        np.testing.assert_allclose(model.log_scale.numpy(), math.log(0.1), rtol=1e-6)
    else:  # Bernoulli models keep the weights (and checkpoints) they had
        assert model.log_scale is None and len(model.trainable_weights) == bernoulli_weights


def test_read_filters_are_shared_across_channels(colour_config):
    read = Draw(colour_config, seed=0).cell.read  # the model's attentive read, 3 channels, 2x2 glimpses
    twin = attention.AttentiveRead(2, 8, 8, channels=1)  # one channel, the same window weights
    twin.build(h_dec_shape=(None, 16))
    for a, b in zip(twin.window.weights, read.window.weights):
        a.assign(b)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=(4, 3, 8, 8)), tf.float32)  # channels-first, as inside DRAW
    x_hat = tf.constant(rng.normal(size=(4, 3, 8, 8)), tf.float32)
    h_dec = tf.constant(rng.normal(size=(4, 16)), tf.float32)
    glimpses = tf.reshape(read(x, x_hat, h_dec), [4, 2, 3, 2, 2]).numpy()  # [x | x_hat] x channel x N x N
    for c in range(3):  # each channel's glimpse is the one-channel read of that channel with the same window
        alone = tf.reshape(twin(x[:, c : c + 1], x_hat[:, c : c + 1], h_dec), [4, 2, 2, 2]).numpy()
        np.testing.assert_allclose(glimpses[:, :, c], alone, rtol=1e-5, atol=1e-6)
    grey = tf.tile(x[:, :1], [1, 3, 1, 1])  # identical channels give identical glimpses
    same = tf.reshape(read(grey, tf.tile(x_hat[:, :1], [1, 3, 1, 1]), h_dec), [4, 2, 3, 2, 2]).numpy()
    for c in (1, 2):
        np.testing.assert_array_equal(same[:, :, c], same[:, :, 0])
    assert not np.allclose(glimpses[:, :, 1], glimpses[:, :, 0])  # (distinct channels stay distinct)


def test_write_filters_are_shared_across_channels(colour_config):
    write = Draw(colour_config, seed=0).cell.write  # the model's attentive write, 3 channels, 3x3 patches
    rng = np.random.default_rng(1)
    params = tf.constant(rng.normal(scale=0.3, size=(4, 5)), tf.float32)
    patch = tf.constant(rng.normal(size=(4, 3, 3, 3)), tf.float32)
    canvas, _ = write.write_with_params(params, tf.reshape(patch, [4, -1]))  # [4, 3, 8, 8]
    one = attention.AttentiveWrite(3, 8, 8, channels=1)
    for c in range(3):
        alone, _ = one.write_with_params(params, tf.reshape(patch[:, c], [4, -1]))
        np.testing.assert_allclose(canvas[:, c].numpy(), alone[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    same, _ = write.write_with_params(params, tf.reshape(tf.tile(patch[:, :1], [1, 3, 1, 1]), [4, -1]))
    np.testing.assert_array_equal(same[:, 1].numpy(), same[:, 0].numpy())


# Automatic differentiation skips the XLA compile; test_bptt.py checks that the hand-written
# backpropagation (the default) gives the same gradients for both likelihoods, also under XLA, and
# test_cli.py trains cifar10_logistic with it.
@pytest.mark.slow  # short training runs that must beat a baseline
@pytest.mark.parametrize("likelihood, jit_loss", [("bernoulli", False), ("discretized_logistic", False)])
def test_loss_falls_on_colour_blobs(colour_config, likelihood, jit_loss):
    keras.utils.set_random_seed(0)
    model = Draw(colour_config.replace(likelihood=likelihood), seed=0, jit_loss=jit_loss)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(_colour_blobs(64), batch_size=16, epochs=8, shuffle=True, verbose=0).history
    first, last = history["loss"][0], history["loss"][-1]
    assert np.all(np.isfinite(history["loss"]))
    assert last < first - 0.1 * abs(first), history["loss"]
    if likelihood == "discretized_logistic":  # the learned scales moved too
        assert not np.allclose(model.log_scale.numpy(), math.log(0.1))


def test_keras_file_round_trip_keeps_the_scales(tmp_path, colour_config, perturb_weights):
    config = colour_config.replace(likelihood="discretized_logistic")
    model = perturb_weights(Draw(config, seed=0))
    assert not np.allclose(model.log_scale.numpy(), math.log(0.1))  # the scales too: not their initial value
    path = os.path.join(tmp_path, "colour.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Draw) and loaded.config == config
    np.testing.assert_array_equal(loaded.log_scale.numpy(), model.log_scale.numpy())
    x, noise = _colour_blobs(3, seed=2), model.prior_noise(3, seed=4)

    def outputs(m):
        return m.generate(noise)["images"].numpy(), m.negative_elbo_terms(x, noise=m.check_noise(noise))[0].numpy()

    for a, b in zip(outputs(model), outputs(loaded)):
        np.testing.assert_array_equal(a, b)
