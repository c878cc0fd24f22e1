"""Exporters: a SavedModel for TensorFlow Serving and the TFLite (LiteRT) sampler."""

from draw_tf.export.saved_model import SIGNATURES, export_saved_model, existing_versions, serving_functions
from draw_tf.export.tflite import QUANTIZATIONS, export_tflite, op_names, run_sampler

__all__ = [
    "QUANTIZATIONS",
    "SIGNATURES",
    "existing_versions",
    "export_saved_model",
    "export_tflite",
    "op_names",
    "run_sampler",
    "serving_functions",
]
