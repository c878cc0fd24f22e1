"""draw-tf: DRAW (Gregor et al. 2015) in TensorFlow / Keras 3.

`import draw_tf` is cheap: the names below load their module (and TensorFlow) on first use
(PEP 562), so `draw-tf --help` answers without TensorFlow. `draw_tf.Draw`, `draw_tf.get_preset`,
`from draw_tf import Draw` work as always.
"""

import importlib as _importlib
import os as _os
import sys as _sys

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.2.0"

_EXPORTS = {
    "AttentionWindow": "draw_tf.attention",
    "AttentiveRead": "draw_tf.attention",
    "AttentiveWrite": "draw_tf.attention",
    "Filterbank": "draw_tf.attention",
    "PlainRead": "draw_tf.attention",
    "PlainWrite": "draw_tf.attention",
    "Window": "draw_tf.attention",
    "DrawCell": "draw_tf.cell",
    "DrawState": "draw_tf.cell",
    "CLASSIFIER_PRESETS": "draw_tf.classifier",
    "ClassifierConfig": "draw_tf.classifier",
    "DrawClassifier": "draw_tf.classifier",
    "baseline_classifier": "draw_tf.classifier",
    "PRESETS": "draw_tf.config",
    "DrawConfig": "draw_tf.config",
    "get_preset": "draw_tf.config",
    "Draw": "draw_tf.model",
    "RestartableAdam": "draw_tf.optimizer",
    "pretrained": "draw_tf.pretrained_models",  # the function draw_tf.pretrained_models.pretrained
}

__all__ = [
    "AttentionWindow",
    "AttentiveRead",
    "AttentiveWrite",
    "CLASSIFIER_PRESETS",
    "ClassifierConfig",
    "Draw",
    "DrawCell",
    "DrawClassifier",
    "DrawConfig",
    "DrawState",
    "Filterbank",
    "PRESETS",
    "PlainRead",
    "PlainWrite",
    "RestartableAdam",
    "Window",
    "baseline_classifier",
    "get_preset",
    "pretrained",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _register_keras_classes():
    """Imports the modules whose layers and models are registered Keras serializables, so that
    `keras.models.load_model` finds them."""
    for module in sorted(set(_EXPORTS.values())):
        _importlib.import_module(module)


if "keras" in _sys.modules:
    # Keras (hence TensorFlow) is loaded already, as in `import keras, draw_tf`: register the draw-tf
    # layers now, as `import draw_tf` always did, so `keras.models.load_model("draw.keras")` works.
    _register_keras_classes()
