"""DrawConfig.window_rate: the same model at the start, slower windows under Adam, in every path."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw
from draw_tf.image_layout import to_chw


def _step_one_windows(model, x, noise):
    out = model.unroll(to_chw(x), noise, record=True)
    return out.sequences["read_windows"][:, 0], out.sequences["write_windows"][:, 0]  # [batch, 5]


def test_window_rate_keeps_the_model_and_scales_how_far_an_adam_step_moves_the_windows(tiny_config):
    """With rate r the window maps are h (r W) + b with W 1/r larger: the same function at the start
    (same seed), but one Adam step on W (about the learning rate per weight whatever the gradient,
    here from the hand-written backward pass) moves the first write window r times as far."""
    x = tf.constant(np.random.default_rng(0).uniform(size=(4, *tiny_config.image_shape)), tf.float32)
    starts, moves, losses = {}, {}, {}
    for rate in (1.0, 0.1):
        keras.utils.set_random_seed(0)
        model = Draw(tiny_config.replace(window_rate=rate), seed=0)
        model.build()
        noise = model.posterior_noise(4)
        read, write = _step_one_windows(model, x, noise)
        starts[rate] = (read.numpy(), write.numpy())
        loss, _, _, gradients = model._loss_and_gradients(x, noise, 1.0)
        losses[rate] = loss.numpy()
        kernel = model.cell.write.window.dense.kernel
        (gradient,) = [g for g, w in zip(gradients, model.trainable_weights) if w is kernel]
        keras.optimizers.Adam(1e-3, epsilon=1e-12).apply_gradients([(gradient, kernel)])
        # step 1's write window is a linear function of the write kernel alone
        moves[rate] = _step_one_windows(model, x, noise)[1].numpy()[:, :2] - write.numpy()[:, :2]
    for a, b in zip(starts[0.1], starts[1.0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(losses[0.1], losses[1.0], rtol=1e-5)
    assert np.abs(moves[1.0]).max() > 1e-3  # the step moves the windows
    np.testing.assert_allclose(moves[0.1], 0.1 * moves[1.0], rtol=1e-3, atol=1e-6)


def test_window_rate_is_saved_and_checked(tiny_config, tmp_path):
    model = Draw(tiny_config.replace(window_rate=0.25), seed=0)
    model.build()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.config.window_rate == 0.25
    x = tf.constant(np.random.default_rng(0).uniform(size=(2, *tiny_config.image_shape)), tf.float32)
    noise = model.posterior_noise(2)
    np.testing.assert_allclose(loaded.unroll(to_chw(x), noise).canvas, model.unroll(to_chw(x), noise).canvas, atol=1e-6)
    with pytest.raises(ValueError, match=r"window_rate must be in \(0, 1\], received 2"):
        tiny_config.replace(window_rate=2)
