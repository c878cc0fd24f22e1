"""Halving a constant learning rate when the validation bound stops falling fast enough.

The rule the shipped `mnist` model was trained with (docs/training.md): halve the rate when the
validation bound gained less than `min_gain` nats over the last `window` epochs at the current
rate. It reads only the run's training log (`draw_tf.training.TrainingLog`: every epoch's
`val_loss` and `learning_rate`, all sessions of the run), so a resumed run decides exactly as an
uninterrupted one; `draw_tf.training.HalveOnSlowProgress` applies it after every epoch, and the
rate it halved to is optimizer state, in the checkpoint.
"""

from __future__ import annotations

import math


def parse_rule(text):
    """`"GAIN,EPOCHS"` (e.g. "0.3,15") as (min_gain float > 0, window int >= 1)."""
    parts = str(text).split(",")
    try:
        min_gain, window = float(parts[0]), int(parts[1])
        if len(parts) != 2 or not (min_gain > 0 and math.isfinite(min_gain)) or window < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(
            f"lr_halving must be GAIN,EPOCHS (nats > 0, epochs >= 1), e.g. 0.3,15, or off; received {text!r}."
        ) from None
    return min_gain, window


def check_rule(rule):
    """`rule` as a (min_gain, window) tuple, or None for None, False or "off"; another string is
    parsed with `parse_rule`."""
    if rule is None or rule is False or rule == "off":
        return None
    if isinstance(rule, str):
        return parse_rule(rule)
    if not isinstance(rule, (tuple, list)) or len(rule) != 2:
        raise ValueError(f"lr_halving must be (min_gain, window) or None, received {rule!r}.")
    return parse_rule(f"{rule[0]},{rule[1]}")


def current_phase(records):
    """The trailing records logged at the last record's learning rate, oldest first."""
    if not records:
        return []
    rate = records[-1]["learning_rate"]
    phase = []
    for record in reversed(records):
        if not math.isclose(record["learning_rate"], rate, rel_tol=1e-6):
            break
        phase.append(record)
    return phase[::-1]


def progress_too_slow(records, min_gain, window):
    """True when the last record's `val_loss` is less than `min_gain` below that of `window`
    epochs earlier, both at the current rate. `records`: training-log dicts, by epoch."""
    phase = current_phase(records)
    if len(phase) <= window:
        return False
    return phase[-1 - window]["val_loss"] - phase[-1]["val_loss"] < min_gain
