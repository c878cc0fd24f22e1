"""XLA conformance: the compiled forward/backward equals the plain graph, and full-step XLA trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw


def test_jit_loss_matches_the_uncompiled_gradients(tiny_config):
    plain = Draw(tiny_config, seed=0, jit_loss=False)
    jitted = Draw(tiny_config, seed=0, jit_loss=True)
    jitted.set_weights(plain.get_weights())
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 2, size=(6, *tiny_config.image_shape)), tf.float32)
    noise = plain.posterior_noise(6)
    a = plain._compiled("_loss_and_gradients")(x, noise, 1.0)
    b = jitted._compiled("_loss_and_gradients")(x, noise, 1.0)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), rtol=1e-5)
    for ga, gb, w in zip(a[3], b[3], plain.trainable_weights):
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-3, atol=1e-4, err_msg=w.path)


@pytest.mark.slow  # an option (--jit_compile), not the default path
def test_whole_train_step_compiles_with_keras_jit_compile(tiny_config):
    for config in (tiny_config, tiny_config.replace(read_size=0, write_size=0)):
        model = Draw(config, seed=1)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
        x = np.random.default_rng(1).integers(0, 2, size=(8, *config.image_shape)).astype(np.float32)
        first = model.train_on_batch(x, return_dict=True)["loss"]
        for _ in range(5):
            last = model.train_on_batch(x, return_dict=True)["loss"]
        assert np.isfinite(last) and last < first


@pytest.mark.slow
def test_jit_loss_under_fit_with_an_unknown_batch_dimension(tiny_config):
    # tf.data batches have a static batch dimension of None; the XLA-compiled gradient of the
    # T-step loop must not depend on it (grey images read x and x_hat as two channels).
    for config in (tiny_config, tiny_config.replace(channels=1)):
        model = Draw(config, seed=2, jit_loss=True)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x = np.random.default_rng(2).integers(0, 2, size=(10, *config.image_shape)).astype(np.float32)
        ds = tf.data.Dataset.from_tensor_slices(x).batch(4)  # batches of 4, 4 and 2
        history = model.fit(ds, epochs=2, verbose=0).history
        assert np.all(np.isfinite(history["loss"]))
