"""Polyak averaging for `draw-tf train --weight_average=M`: an exponential moving average of the
weights, `average <- M * average + (1 - M) * weights` after every training step.

Adam at a constant rate keeps the weights moving around a minimum (at 2.5e-4 the `mnist` run's
validation bound sat 0.3-0.4 nats above what the same weights reached at 1.25e-4); their average
over the last 1 / (1 - M) steps sits closer to it, without the smaller steps that slow progress.
Training steps the raw weights; the average is what the run validates, keeps as its best epoch and
ships. Both are checkpointed, so a resumed run continues the same average.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf


class WeightAverage(keras.callbacks.Callback):
    """Keeps the moving average of `model`'s trainable weights (updated after every training step)
    and puts it in the model while `fit` validates. After every epoch it also measures the raw
    weights on `validation_data` and adds their loss, reconstruction and KL to the epoch's logs
    as `val_loss_unaveraged`, ... (what the run would have validated without the average).

    Comes first among the callbacks: before the checkpoints (a checkpoint holds the average of its
    step) and before the log (which records the unaveraged numbers)."""

    def __init__(self, model, momentum, validation_data=None):
        super().__init__()
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum < 1:
            raise ValueError(f"weight_average must be a number in (0, 1) (the average's momentum), received {momentum!r}.")
        self.momentum = float(momentum)
        self.validation_data = validation_data
        self.weights = list(model.trainable_variables)
        self.averages = [
            tf.Variable(v, trainable=False, name=v.path.replace("/", "_") + "_average") for v in self.weights
        ]
        self._update = tf.function(self._update_averages)
        self._in_fit = False
        self._validating = None

    def reset(self):
        """Starts the average at the current weights (a run whose checkpoint has none)."""
        for average, weight in zip(self.averages, self.weights):
            average.assign(weight)

    def _update_averages(self):
        for average, weight in zip(self.averages, self.weights):
            average.assign(self.momentum * average + (1.0 - self.momentum) * weight)

    @contextlib.contextmanager
    def applied(self):
        """Inside, the model holds the averaged weights; the raw weights come back after."""
        raw = [np.array(w.numpy()) for w in self.weights]
        for weight, average in zip(self.weights, self.averages):
            weight.assign(average)
        try:
            yield
        finally:
            for weight, value in zip(self.weights, raw):
                weight.assign(value)

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_train_batch_end(self, batch, logs=None):
        self._update()

    def on_test_begin(self, logs=None):
        if self._in_fit:  # fit's validation: of the average
            self._validating = self.applied()
            self._validating.__enter__()

    def on_test_end(self, logs=None):
        if self._validating is not None:
            self._validating.__exit__(None, None, None)
            self._validating = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.validation_data is None or "val_loss" not in logs:
            return
        raw = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
        for name in ("loss", "reconstruction", "kl"):
            if name in raw:
                logs[f"val_{name}_unaveraged"] = raw[name]
