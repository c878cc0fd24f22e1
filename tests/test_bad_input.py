"""Every bad configuration and input raises a clear error naming what was expected and received."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw, DrawConfig, get_preset


@pytest.mark.parametrize(
    "fields,pattern",
    [
        ({"read_size": 29}, r"read_size must be at most the image height \(28\).*received read_size=29"),
        ({"write_size": 11, "image_width": 10}, r"write_size must be at most the image width \(10\).*received write_size=11"),
        ({"time_steps": 0}, r"time_steps must be an integer >= 1 \(T must be at least 1\), received 0"),
        ({"z_size": -3}, r"z_size must be an integer >= 1, received -3"),
        ({"encoder_size": 2.5}, r"encoder_size must be an integer >= 1, received 2.5"),
        ({"attention_init_span": 0}, r"attention_init_span must be in \(0, 1\], received 0"),
    ],
)
def test_invalid_configurations(fields, pattern):
    with pytest.raises(ValueError, match=pattern):
        DrawConfig(**fields)


def test_unknown_preset_and_fields():
    with pytest.raises(ValueError, match=r"Unknown preset 'mnst'; expected one of \["):
        get_preset("mnst")
    with pytest.raises(ValueError, match=r"Unknown DrawConfig fields \['T'\]"):
        DrawConfig.from_dict({"T": 3})
    with pytest.raises(ValueError, match=r"Unknown DrawConfig fields \['time_step'\]; expected a subset of \[.*'time_steps'"):
        get_preset("mnist", time_step=8)  # what --set=time_step=8 calls
    from draw_tf.classifier import get_classifier_preset

    with pytest.raises(ValueError, match=r"Unknown ClassifierConfig fields \['lstm'\]"):
        get_classifier_preset("cluttered_mnist", lstm=64)


@pytest.fixture(scope="module")
def model():
    from draw_tf import DrawConfig

    return Draw(DrawConfig(image_height=8, image_width=6, time_steps=2, encoder_size=8, decoder_size=8, z_size=2,
                           read_size=2, write_size=3))


def test_wrong_image_shape(model):
    with pytest.raises(ValueError, match=r"must have shape \[batch, 8, 6, 1\].*received shape \[2, 28, 28, 1\]"):
        model.reconstruct(np.zeros((2, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match=r"received shape \[8, 6\]"):
        model.reconstruct(np.zeros((8, 6), np.float32))


def test_non_finite_pixels(model):
    x = np.zeros((2, 8, 6, 1), np.float32)
    x[1, 3, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"must be finite; received 1 NaN or Inf pixels"):
        model.reconstruct(x)


def test_pixels_out_of_range(model):
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]; received values in \[255.0, 255.0\].*1/255"):
        model.reconstruct(np.full((2, 8, 6, 1), 255, np.uint8))


def test_bad_pixels_inside_fit_fail_with_the_same_message(model):
    model.compile(optimizer="adam")
    ds = tf.data.Dataset.from_tensor_slices(np.full((4, 8, 6, 1), 2.0, np.float32)).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"pixel values in \[0, 1\]; received a value > 1"):
        model.fit(ds, epochs=1, verbose=0)
    bad = np.zeros((4, 8, 6, 1), np.float32)
    bad[0, 0, 0, 0] = np.inf
    ds = tf.data.Dataset.from_tensor_slices(bad).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"must be finite"):
        model.fit(ds, epochs=1, verbose=0)


def test_empty_batch_and_bad_counts(model):
    with pytest.raises(ValueError, match=r"at least one image"):
        model.reconstruct(np.zeros((0, 8, 6, 1), np.float32))
    with pytest.raises(ValueError, match=r"num_samples must be a positive integer, received 0"):
        model.sample(0)
    with pytest.raises(ValueError, match=r"num_samples must be a positive integer, received -2"):
        model.importance_weighted_nll(np.zeros((1, 8, 6, 1), np.float32), -2)


def test_wrong_noise_shape(model):
    with pytest.raises(ValueError, match=r"noise must have shape \[batch, T=2, z_size=2\], received shape \[3, 4, 2\]"):
        model.generate(np.zeros((3, 4, 2), np.float32))


def test_bad_config_type():
    with pytest.raises(TypeError, match=r"config must be a DrawConfig, a dict of its fields or a preset name, received int"):
        Draw(3)


def test_non_numeric_images(model):
    with pytest.raises(ValueError, match=r"images must be numeric, received dtype <U1"):
        model.reconstruct(np.full((1, 8, 6, 1), "a"))


def test_empty_evaluation_dataset(model):
    from draw_tf import training

    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 8, 6, 1), np.float32)).batch(4)
    with pytest.raises(ValueError, match=r"The evaluation dataset is empty"):
        training.evaluate_nll(model, empty)


def test_missing_model_dir_and_wrong_files(tmp_path):
    from draw_tf import training

    with pytest.raises(FileNotFoundError, match=r"No model directory or .keras file at"):
        training.load_model(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"has no config.json; is it a draw-tf model_dir"):
        training.load_model(str(tmp_path))
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Expected a model directory or a .keras file"):
        training.load_model(str(tmp_path / "weights.h5"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"model_dir must be a directory, received the file"):
        training.train(get_preset("quick"), str(tmp_path / "file"), epochs=1)
