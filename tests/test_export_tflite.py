"""The TFLite sampler in the LiteRT interpreter: equal to the TF sampler on the same noise, builtin
ops only, weights as constants, each quantization smaller than the last."""

import os

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw, get_preset
from draw_tf.export import QUANTIZATIONS, export_tflite, op_names, run_sampler
from draw_tf.export.tflite import VARIABLE_OPS, convert

# Max abs difference from the float32 TF sampler allowed on the final images, per variant.
TOLERANCE = {"float32": 1e-5, "float16": 0.01, "int8": 0.1}


def _noise(config, batch, steps=None, seed=1):
    steps = steps or config.time_steps
    return np.random.default_rng(seed).standard_normal((batch, steps, config.z_size)).astype(np.float32)


@pytest.fixture(scope="module")
def model(tiny_config, perturb_weights):
    return perturb_weights(Draw(tiny_config, seed=0))  # not the initial weights: every head matters


@pytest.fixture(scope="module")
def exports(model, tmp_path_factory):
    """{quantization: (path, report)}: the module's one export of each variant."""
    directory = tmp_path_factory.mktemp("tflite")
    paths = {q: str(directory / f"draw_{q}.tflite") for q in QUANTIZATIONS}
    return {q: (path, export_tflite(model, path, q)) for q, path in paths.items()}


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_litert_matches_the_tf_sampler(model, exports, quantization):
    config = model.config
    path, report = exports[quantization]
    assert report["bytes"] == os.path.getsize(path)
    assert report["max_abs_diff_images"] <= TOLERANCE[quantization]
    z = _noise(config, 1)
    expected = model.generate(z)
    for threads in (1, 2):
        out = run_sampler(path, z, num_threads=threads)
        assert set(out) == {"images", "canvases", "write_windows"}
        assert out["canvases"].shape == (1, config.time_steps, *config.image_shape)
        np.testing.assert_allclose(out["images"], expected["images"].numpy(), atol=TOLERANCE[quantization])
        np.testing.assert_allclose(out["canvases"][:, -1], out["images"], atol=1e-6)
        assert 0 <= out["canvases"].min() and out["canvases"].max() <= 1
        if quantization == "float32":
            np.testing.assert_allclose(out["canvases"], expected["canvases"].numpy(), atol=1e-5)
            np.testing.assert_allclose(out["write_windows"], expected["write_windows"].numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_only_builtin_ops_and_constant_weights(exports, quantization):
    path, report = exports[quantization]
    with open(path, "rb") as f:
        ops = op_names(f.read())  # read from the file written, not from the report
    assert ops == report["ops"]
    assert "WHILE" in ops  # the T steps stay a loop, not T copies of the step
    assert not [op for op in ops if op.startswith("CUSTOM") or op in VARIABLE_OPS]
    assert "FULLY_CONNECTED" in ops or "BATCH_MATMUL" in ops


def test_no_attention_and_other_batch_and_steps_over_an_existing_file(tiny_config, perturb_weights, tmp_path):
    config = tiny_config.replace(read_size=0, write_size=0)
    model = perturb_weights(Draw(config, seed=0))
    path = tmp_path / "plain.tflite"
    path.write_bytes(b"previous")
    report = export_tflite(model, str(path), batch_size=3, time_steps=5, overwrite=True)
    assert report["outputs"] == {"canvases": [3, 5, *config.image_shape], "images": [3, *config.image_shape]}
    z = _noise(config, 3, steps=5)
    longer = Draw(config.replace(time_steps=5))
    longer.set_weights(model.get_weights())
    np.testing.assert_allclose(run_sampler(str(path), z)["images"], longer.generate(z)["images"].numpy(), atol=1e-5)
    assert os.listdir(tmp_path) == ["plain.tflite"]  # replaced whole, no temporary left behind


def test_device_noise_variant(model, tiny_config, tmp_path):
    tf.random.set_seed(1)  # a global seed (as keras.utils.set_random_seed sets) must not fix the device's noise
    path = str(tmp_path / "device.tflite")
    report = export_tflite(model, path, device_noise=True)
    assert "RANDOM_STANDARD_NORMAL" in report["ops"]
    assert not [op for op in report["ops"] if op.startswith("CUSTOM") or op in VARIABLE_OPS]
    first, second = run_sampler(path), run_sampler(path)
    assert first["images"].shape == (1, *tiny_config.image_shape)
    assert 0 <= first["images"].min() and first["images"].max() <= 1
    assert not np.allclose(first["images"], second["images"])  # fresh noise on every invoke


def test_mnist_sizes_shrink_and_int8_fits_in_700_kb():
    model = Draw(get_preset("mnist"), seed=0)
    sizes = {q: len(convert(model, q)) for q in QUANTIZATIONS}
    generator_params = sum(int(np.prod(w.shape)) for w in model.cell.decoder.weights + model.cell.write.weights)
    assert 4 * generator_params < sizes["float32"] < 4 * generator_params * 1.1  # weights stored once, as constants
    assert sizes["float16"] < 0.55 * sizes["float32"]
    assert sizes["int8"] < 0.35 * sizes["float32"] and sizes["int8"] < 700 * 1024


def test_bad_arguments_write_nothing(tiny_config, tmp_path):
    model = Draw(tiny_config)
    path = tmp_path / "draw.tflite"
    for kwargs, message in [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"time_steps": -1}, "time_steps must be a positive integer"),
        ({"quantization": "int4"}, "quantization must be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            export_tflite(model, str(path), **kwargs)
        assert not path.exists()
    with pytest.raises(ValueError, match="directory"):
        export_tflite(model, str(tmp_path))
    path.write_bytes(b"previous")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_tflite(model, str(path))
    assert path.read_bytes() == b"previous"  # (overwrite=True: test_no_attention_and_other_batch_and_steps...)
    assert os.listdir(tmp_path) == ["draw.tflite"]
