"""The hand-written backpropagation (draw_tf.bptt) equals automatic differentiation of the T-step
loop, for every attention combination, grey and colour images, both likelihoods, and under XLA."""

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw, bptt


def _perturbed_model(config, seed=0):
    model = Draw(config, seed=seed)
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:  # random, not initial, weights: every path carries gradient
        w.assign(w.numpy() + rng.normal(scale=0.3 / np.sqrt(max(w.shape[0], 1)), size=w.shape).astype(np.float32))
    return model


@pytest.mark.parametrize(
    "overrides",
    [
        {}, {"channels": 1}, {"read_size": 0}, {"write_size": 0}, {"read_size": 0, "write_size": 0}, {"read_size": 1},
        {"time_steps": 1}, {"image_width": 12},
        {"likelihood": "discretized_logistic"}, {"likelihood": "discretized_logistic", "channels": 3, "read_size": 0},
        {"likelihood": "discretized_logistic", "time_steps": 1}, {"window_rate": 0.25},
    ],
    ids=[
        "attention-2ch", "attention-1ch", "plain-read", "plain-write", "no-attention", "read-1x1", "one-step", "square",
        "logistic-2ch", "logistic-3ch-plain-read", "logistic-one-step", "window-rate",
    ],
)
def test_gradients_equal_autodiff(tiny_config, overrides):
    config = tiny_config.replace(**overrides)
    model = _perturbed_model(config)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(size=(5, *config.image_shape)), tf.float32)  # grey values exercise x_hat
    noise = model.posterior_noise(5)
    expected = model._autodiff_loss_and_gradients(x, noise, 2.0)  # tf.while_loop autodiff
    got = bptt.loss_and_gradients(model, x, noise, 2.0)
    for name, a, b in zip(("loss", "reconstruction", "kl"), expected[:3], got[:3]):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, err_msg=name)
    silent = 0
    for a, b, w in zip(expected[3], got[3], model.trainable_weights):
        assert b is not None, w.path
        a = np.zeros(b.shape, np.float32) if a is None else a.numpy()
        scale = np.max(np.abs(a))
        silent += scale == 0
        np.testing.assert_allclose(b.numpy(), a, rtol=0, atol=1e-5 * scale, err_msg=w.path)
    # Every weight, the learned initial states included, carries gradient (also with T = 1, where
    # the recurrent kernels and the read window see only the initial states).
    assert silent == 0, "weights without gradient in the reference"


@pytest.mark.parametrize(
    "likelihood", ["bernoulli", pytest.param("discretized_logistic", marks=pytest.mark.slow)],  # (its own XLA compile)
)
def test_gradients_equal_autodiff_under_xla_with_an_unknown_batch(tiny_config, likelihood):
    tiny_config = tiny_config.replace(likelihood=likelihood)
    model = _perturbed_model(tiny_config, seed=3)
    spec = [tf.TensorSpec([None, *tiny_config.image_shape]), tf.TensorSpec([tiny_config.time_steps, tiny_config.z_size, None]), tf.TensorSpec([])]
    expected_fn = tf.function(model._autodiff_loss_and_gradients, input_signature=spec)
    got_fn = tf.function(lambda x, n, r: bptt.loss_and_gradients(model, x, n, r), input_signature=spec, jit_compile=True)
    high = 1 if likelihood == "bernoulli" else 255  # binary or 8-bit images
    values = np.random.default_rng(4).integers(0, high + 1, size=(7, *tiny_config.image_shape))
    x = tf.constant(values / high, tf.float32)
    noise = model.posterior_noise(7)
    expected, got = expected_fn(x, noise, 1.0), got_fn(x, noise, 1.0)
    np.testing.assert_allclose(got[0].numpy(), expected[0].numpy(), rtol=1e-5)
    for a, b, w in zip(expected[3], got[3], model.trainable_weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-4 * np.max(np.abs(a.numpy())), err_msg=w.path)


def test_lstm_backward_matches_autodiff():
    rng = np.random.default_rng(5)
    gates, c_prev = tf.constant(rng.normal(size=(12, 4)), tf.float32), tf.constant(rng.normal(size=(3, 4)), tf.float32)
    dh, dc = tf.constant(rng.normal(size=(3, 4)), tf.float32), tf.constant(rng.normal(size=(3, 4)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([gates, c_prev])
        h, c = bptt.lstm_forward(gates, c_prev)
    expected = tape.gradient([h, c], [gates, c_prev], output_gradients=[dh, dc])
    got = bptt.lstm_backward(gates, c_prev, dh, dc)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
