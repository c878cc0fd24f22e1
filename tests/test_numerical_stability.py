"""Extreme attention parameters (tiny or huge sigma, gamma and stride; centres far off the image)
give a finite loss and finite gradients, through automatic differentiation and the XLA-compiled
hand-written backward pass alike."""

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw
from draw_tf.attention import decode_window

# (index among g~x, g~y, log sigma^2, log delta~, log gamma; bias value)
CASES = {
    "tiny sigma": (2, -60.0), "huge sigma": (2, 60.0), "tiny gamma": (4, -100.0), "huge gamma": (4, 100.0),
    "tiny stride": (3, -100.0), "huge stride": (3, 60.0), "far centre": (0, 1e4), "farther centre": (1, 1e30),
}


@pytest.fixture(scope="module")
def extreme(tiny_config):
    """One model, images and noise for every case (each case sets its own biases): the autodiff
    and the XLA-compiled functions are built once, the biases being variables."""
    model = Draw(tiny_config, seed=0)
    biases = {layer: layer.window.dense.bias.numpy() for layer in (model.cell.read, model.cell.write)}
    x = tf.constant((np.random.default_rng(0).random((3, *tiny_config.image_shape)) > 0.5).astype(np.float32))
    noise = model.posterior_noise(3)
    functions = (tf.function(model._autodiff_loss_and_gradients), model._compiled("_loss_and_gradients"))
    ordinary = [float(f(x, noise, 1.0)[0]) for f in functions]  # the loss with the biases as made
    return model, biases, x, noise, functions, ordinary


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_and_gradients_stay_finite(extreme, case):
    index, value = CASES[case]
    model, biases, x, noise, functions, ordinary = extreme
    for layer, initial in biases.items():  # both windows at the extreme, the other parameters as made
        bias = initial.copy()
        bias[index] = value
        layer.window.dense.bias.assign(bias)
    for function, ordinary_loss in zip(functions, ordinary):
        loss, _, _, gradients = function(x, noise, 1.0)
        assert np.isfinite(float(loss))
        assert float(loss) != ordinary_loss  # the function reads the biases set here
        for variable, gradient in zip(model.trainable_variables, gradients):
            assert np.all(np.isfinite(gradient.numpy())), variable.path


def test_bounds_leave_ordinary_parameters_unchanged():
    params = tf.constant([[0.3, -0.2, 1.5, -2.0, 0.7]])
    window = decode_window(params, 28, 28, 5)
    np.testing.assert_allclose(window.gx.numpy(), [29 / 2 * 1.3], rtol=1e-6)
    np.testing.assert_allclose(window.sigma2.numpy(), [np.exp(1.5)], rtol=1e-6)
    np.testing.assert_allclose(window.delta.numpy(), [27 / 4 * np.exp(-2.0)], rtol=1e-6)
    np.testing.assert_allclose(window.gamma.numpy(), [np.exp(0.7)], rtol=1e-6)
    extreme = decode_window(tf.constant([[1e30, -1e30, 1e30, -1e30, 1e30]]), 28, 28, 5)
    assert all(np.all(np.isfinite(v.numpy())) for v in extreme)
