"""The TFLite (LiteRT) sampler: the DRAW generator as a `.tflite` file of builtin ops only.

The file has one signature, `sample`:
  input  `z`             float32 [batch, T, z_size]  prior noise, N(0, I) (absent with device noise)
  output `images`        float32 [batch, H, W, C]    mean image sigmoid(c_T) in [0, 1] (the final canvas)
  output `canvases`      float32 [batch, T, H, W, C] the canvas after every step, in [0, 1]
  output `write_windows` float32 [batch, T, 5]       gx, gy, sigma^2, delta, gamma in pixels
                                                     (only with write attention)
Batch and T are fixed at export. Weights are constants (converted from a SavedModel, never from
live variables, which would leave them uninitialised), and the exporter refuses any op that is not
a TFLite builtin or that handles resource variables, so the stock Android runtime runs it.

`device_noise=True` exports a sampler without inputs that draws z itself with the builtin
RANDOM_STANDARD_NORMAL op (fresh noise on every invoke; no seed to control it).
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from draw_tf.files import atomic_path

QUANTIZATIONS = ("float32", "float16", "int8")
# TFLite builtins that exist but mean the weights are variables, not constants.
VARIABLE_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"})


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, received {value!r}.")
    return int(value)


def sampler_model(model, time_steps=None):
    """`model`, or a copy with the same weights that draws in `time_steps` steps."""
    from draw_tf.model import Draw

    if time_steps is None or time_steps == model.config.time_steps:
        return model
    copy = Draw(model.config.replace(time_steps=_check_positive_int("time_steps", time_steps)))
    copy.set_weights(model.get_weights())
    return copy


def sampler_function(model, batch_size=1, device_noise=False):
    """The `sample` signature's tf.function (fixed batch and T) for `model` (a `Draw`)."""
    cfg = model.config
    batch_size = _check_positive_int("batch_size", batch_size)

    def outputs(loop_noise):  # [T, z, batch]
        return model.generate_outputs(loop_noise, return_sequences=True)

    if device_noise:
        # Seeds (0, 0) ask the runtime for non-deterministic noise. tf.random.normal would bake in
        # the seeds derived from a global seed (keras.utils.set_random_seed), and every interpreter
        # would then draw the same images.
        def unseeded_noise():
            shape = tf.constant([cfg.time_steps, cfg.z_size, batch_size])
            return outputs(tf.raw_ops.RandomStandardNormal(shape=shape, dtype=tf.float32, seed=0, seed2=0))

        return tf.function(unseeded_noise, input_signature=[])

    def sample(z):
        return outputs(tf.transpose(z, [1, 2, 0]))

    return tf.function(sample, input_signature=[tf.TensorSpec([batch_size, cfg.time_steps, cfg.z_size], tf.float32, name="z")])


def convert(model, quantization="float32", batch_size=1, time_steps=None, device_noise=False):
    """The `.tflite` bytes of the sampler (see the module docstring)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {list(QUANTIZATIONS)}, received {quantization!r}.")
    model = sampler_model(model, time_steps)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("sample", sampler_function(model, batch_size, device_noise))
    with tempfile.TemporaryDirectory(prefix="draw-tflite-") as saved_model:
        archive.write_out(saved_model, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["sample"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":  # dynamic range: int8 weights, float activations
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        content = converter.convert()
    ops = op_names(content)
    bad = sorted(op for op in ops if op.startswith("CUSTOM") or op in VARIABLE_OPS)
    if bad:
        raise RuntimeError(f"The converted sampler uses ops the stock TFLite runtime cannot run as constants-only builtins: {bad}.")
    return content


def op_names(content):
    """The distinct operator names in a `.tflite` flatbuffer (custom ops as `CUSTOM:<name>`)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    found = set()
    for code in flatbuffer_utils.read_model_from_bytearray(bytearray(content)).operatorCodes:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            name = f"CUSTOM:{custom}"
        found.add(name)
    return sorted(found)


def run_sampler(content_or_path, z=None, num_threads=1):
    """Runs the `sample` signature in the LiteRT interpreter; returns its outputs (numpy dict)."""
    from ai_edge_litert.interpreter import Interpreter

    kwargs = {"model_path": content_or_path} if isinstance(content_or_path, str) else {"model_content": content_or_path}
    runner = Interpreter(num_threads=num_threads, **kwargs).get_signature_runner("sample")
    return runner() if z is None else runner(z=np.asarray(z, np.float32))


def export_tflite(
    model, path, quantization="float32", batch_size=1, time_steps=None, device_noise=False, overwrite=False
):
    """Writes the TFLite sampler of `model` to `path` and checks it in the LiteRT interpreter.

    Returns a report: path, bytes, ops, shapes, and (with noise as input) the max and mean abs
    difference of `images` and `canvases` from the TF model on the same fixed noise (seed 0). An existing file is
    replaced only with `overwrite`; the file appears whole or not at all.
    """
    if os.path.isdir(path):
        raise ValueError(f"path must be a .tflite file path, received the directory {path!r}.")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise ValueError(f"The parent of {path!r} is a file, not a directory.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} exists; pass overwrite=True (--overwrite) to replace it.")
    batch_size = _check_positive_int("batch_size", batch_size)
    model = sampler_model(model, time_steps)
    steps = model.config.time_steps
    content = convert(model, quantization, batch_size, device_noise=device_noise)
    report = {
        "path": path, "quantization": quantization, "bytes": len(content), "ops": op_names(content),
        "batch_size": batch_size, "time_steps": steps, "noise": "device" if device_noise else "input",
    }
    if device_noise:
        out = run_sampler(content)
    else:
        z = np.random.default_rng(0).standard_normal((batch_size, steps, model.config.z_size)).astype(np.float32)
        out = run_sampler(content, z)
        reference = model.generate(z)
        for name in ("images", "canvases"):
            diff = np.abs(out[name] - reference[name].numpy())
            report[f"max_abs_diff_{name}"], report[f"mean_abs_diff_{name}"] = float(diff.max()), float(diff.mean())
    report["outputs"] = {name: list(value.shape) for name, value in sorted(out.items())}
    with atomic_path(path, suffix=".tflite") as tmp:
        with open(tmp, "wb") as f:
            f.write(content)
    return report
