"""draw-tf: DRAW (Gregor et al. 2015) in TensorFlow / Keras 3."""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from draw_tf.attention import (  # noqa: E402
    AttentionWindow,
    AttentiveRead,
    AttentiveWrite,
    Filterbank,
    PlainRead,
    PlainWrite,
    Window,
)
from draw_tf.cell import DrawCell, DrawState  # noqa: E402
from draw_tf.classifier import CLASSIFIER_PRESETS, ClassifierConfig, DrawClassifier, baseline_classifier  # noqa: E402
from draw_tf.config import PRESETS, DrawConfig, get_preset  # noqa: E402
from draw_tf.model import Draw  # noqa: E402

__version__ = "0.2.0"

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
    "Window",
    "baseline_classifier",
    "get_preset",
]
