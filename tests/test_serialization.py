"""Save/load round trips: .keras (safe_mode on), weights files, configs of every custom layer."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import draw_tf
from draw_tf import Draw, attention


def _trained_like(config):
    model = Draw(config, seed=0)
    rng = np.random.default_rng(0)
    for w in model.trainable_weights:
        w.assign(w.numpy() + rng.normal(scale=0.05, size=w.shape).astype(np.float32))
    return model


def _outputs(model, noise, x):
    rec, kl = model.negative_elbo_terms(x, noise=model.check_noise(noise))
    return model.generate(noise)["images"].numpy(), rec.numpy(), kl.numpy()


@pytest.mark.parametrize("overrides", [{}, {"read_size": 0, "write_size": 0}])
def test_keras_file_round_trip(tmp_path, tiny_config, overrides):
    config = tiny_config.replace(**overrides)
    model = _trained_like(config)
    model.compile(optimizer="adam")
    path = os.path.join(tmp_path, "draw.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode stays on
    assert isinstance(loaded, Draw) and loaded.config == config
    noise = model.prior_noise(4, seed=3)
    x = np.random.default_rng(1).integers(0, 2, size=(4, *config.image_shape)).astype(np.float32)
    for a, b in zip(_outputs(model, noise, x), _outputs(loaded, noise, x)):
        np.testing.assert_array_equal(a, b)


def test_weights_file_round_trip(tmp_path, tiny_config):
    model = _trained_like(tiny_config)
    path = os.path.join(tmp_path, "draw.weights.h5")
    model.save_weights(path)
    fresh = Draw(tiny_config, seed=5)
    fresh.load_weights(path)
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_weights_of_another_preset_do_not_load(tmp_path, tiny_config):
    path = os.path.join(tmp_path, "draw.weights.h5")
    _trained_like(tiny_config).save_weights(path)
    with pytest.raises(ValueError):
        Draw(tiny_config.replace(encoder_size=8)).load_weights(path)


LAYERS = [
    attention.AttentionWindow(3, 12, 10, initial_bias=[0.1, 0.2, 0.3, 0.4, 0.5]),
    attention.Filterbank(3, 12, 10, eps=1e-6),
    attention.AttentiveRead(3, 12, 10, channels=2, initial_bias=[0, 0, 1, -1, 0]),
    attention.AttentiveWrite(4, 12, 10, channels=2),
    attention.PlainRead(12, 10, 2),
    attention.PlainWrite(12, 10, 2),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: type(l).__name__)
def test_every_layer_config_round_trips(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    # Registered: deserialisable by name with safe_mode on.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_cell_and_model_config_round_trip(tiny_config):
    cell = draw_tf.DrawCell(tiny_config)
    assert draw_tf.DrawCell.from_config(cell.get_config()).config == tiny_config
    model = Draw(tiny_config, seed=4)
    clone = Draw.from_config(model.get_config())
    assert clone.config == tiny_config and clone.seed == 4
