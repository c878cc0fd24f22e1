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


_EXPECTED = "lr_halving must be GAIN,EPOCHS (nats > 0, whole epochs >= 1), e.g. 0.3,15, or off"


def check_rule(rule):
    """The rule as a (min_gain, window) tuple, or None (no rule) for None, False or "off".

    `rule`: "GAIN,EPOCHS" (e.g. "0.3,15"), or a (gain, epochs) pair (as config.json stores it)."""
    if rule is None or rule is False or rule == "off":
        return None
    parts = rule.split(",") if isinstance(rule, str) else rule
    try:
        gain, epochs = parts
        if isinstance(epochs, bool) or (isinstance(epochs, str) and not epochs.strip().isdigit()):
            raise ValueError
        min_gain, window = float(gain), int(epochs)
        if window != float(epochs) or window < 1 or not (min_gain > 0 and math.isfinite(min_gain)):
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError(f"{_EXPECTED}; received {rule!r}.") from None
    return min_gain, window


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
    """True when the last record's `val_loss` is less than `min_gain` below that of the record
    `window` epochs earlier, both at the current rate. `records`: training-log dicts, by epoch;
    those without a validation are left out."""
    records = [r for r in records if "val_loss" in r]
    if not records:
        return False
    earlier = {r["epoch"]: r for r in current_phase(records)}.get(records[-1]["epoch"] - window)
    return earlier is not None and earlier["val_loss"] - records[-1]["val_loss"] < min_gain
