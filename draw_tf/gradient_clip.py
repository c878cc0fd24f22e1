"""How the cluttered-MNIST classifier's optimizer clips gradients: "tensor:C", "global:C" or "off".

Plain Python (no TensorFlow), so that the command line checks the flag before anything loads.
"""

from __future__ import annotations

import math

DEFAULT = "tensor:1"  # what every classifier shipped so far trained with


def adam_arguments(text):
    """Keras optimizer keyword arguments for `text`: "tensor:C" clips each weight tensor's gradient
    to norm C on its own (`clipnorm`), "global:C" all of them together to global norm C
    (`global_clipnorm`, as the DRAW generator does with C = 10), "off" neither."""
    kind, _, value = str(text).partition(":")
    if kind == "off" and not value:
        return {}
    try:
        norm = float(value)
    except ValueError:
        norm = math.nan
    if kind not in ("tensor", "global") or not 0 < norm < math.inf:
        raise ValueError(f"gradient_clip must be tensor:C, global:C (C > 0) or off, received {text!r}.")
    return {"clipnorm" if kind == "tensor" else "global_clipnorm": norm}
