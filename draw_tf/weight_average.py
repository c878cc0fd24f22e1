"""Polyak averaging for `draw-tf train --weight_average=M`: an exponential moving average of the
weights, `average <- M * average + (1 - M) * weights` after every training step.

Adam at a constant rate keeps the weights moving around a minimum (at 2.5e-4 the `mnist` run's
validation bound sat 0.3-0.4 nats above what the same weights reached at 1.25e-4); their average
over the last 1 / (1 - M) steps sits closer to it, without the smaller steps that slow progress.
Training steps the raw weights; the average is what the run validates, keeps as its best epoch,
writes as its final `model.keras`, loads (`training.load_model`) and ships. Both are checkpointed,
so a resumed run continues the same average.

The average has no warm-up: it starts at the weights it is switched on with (a new run's random
initial weights, whose share after n steps is M^n: 0.61 after one 500-step epoch at M = 0.999).
It is meant for a run past its first fast epochs, for example switched on when resuming one.

`draw-tf train_classifier --weight_average=M` keeps the same average inside Keras's Adam
(`use_ema=True`, so that its backups hold it) and uses it the same way (`optimizer_average_applied`).
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf


def check_momentum(momentum):
    """Returns `momentum` if it is 0 (off) or in (0, 1); else ValueError."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not (momentum == 0 or 0 < momentum < 1):
        raise ValueError(f"weight_average must be 0 (off) or a momentum in (0, 1), received {momentum!r}.")
    return momentum


class ValidatesTheAverage(keras.callbacks.Callback):
    """While `fit` validates, the model holds the weights of `applied()` (a subclass's average);
    the trained weights come back after."""

    def __init__(self):
        super().__init__()
        self._in_fit = False
        self._validating = None

    def applied(self):
        raise NotImplementedError

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_test_begin(self, logs=None):
        if self._in_fit:  # fit's validation (not a model.evaluate of the callbacks)
            self._validating = self.applied()
            self._validating.__enter__()

    def on_test_end(self, logs=None):
        if self._validating is not None:
            self._validating.__exit__(None, None, None)
            self._validating = None


class WeightAverage(ValidatesTheAverage):
    """Keeps the moving average of `model`'s trainable weights (updated after every training step)
    and puts it in the model while `fit` validates. After every epoch it also measures the raw
    weights on `validation_data`, with the posterior noise the average's validation drew, and adds
    their loss, reconstruction and KL to the epoch's logs as `val_loss_unaveraged`, ...: the
    number a run without the average logs as `val_loss`, bit for bit, so the two are compared on
    the same noise.

    Comes first among the callbacks: before the checkpoints (a checkpoint holds the average of its
    step) and before the log (which records the unaveraged numbers)."""

    def __init__(self, model, momentum, validation_data=None):
        super().__init__()
        if check_momentum(momentum) == 0:
            raise ValueError(f"weight_average must be 0 (off) or a momentum in (0, 1), received {momentum!r}.")
        self.momentum = float(momentum)
        self.validation_data = validation_data
        self.weights = list(model.trainable_variables)
        self.averages = [
            tf.Variable(v, trainable=False, name=v.path.replace("/", "_") + "_average") for v in self.weights
        ]
        self._update = tf.function(self._update_averages)
        self._noise_state = None  # the posterior noise generator's state when fit's validation began

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
        with values_kept(self.weights):
            for weight, average in zip(self.weights, self.averages):
                weight.assign(average)
            yield

    def on_train_batch_end(self, batch, logs=None):
        self._update()

    def on_test_begin(self, logs=None):
        if self._in_fit:
            self._noise_state = self.model.seed_generator.state.numpy()
        super().on_test_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.validation_data is None or "val_loss" not in logs:
            return
        state = self.model.seed_generator.state
        after = state.numpy()
        if self._noise_state is not None:
            state.assign(self._noise_state)  # the noise the average's validation drew
        raw = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
        state.assign(after)  # the run goes on as a run without the raw evaluation would
        for name in ("loss", "reconstruction", "kl"):
            if name in raw:
                logs[f"val_{name}_unaveraged"] = raw[name]


@contextlib.contextmanager
def values_kept(variables):
    """Inside, `variables` may be assigned anything; their values come back after."""
    kept = [np.array(v.numpy()) for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, kept):
            variable.assign(value)


class OptimizerWeightAverage(ValidatesTheAverage):
    """The weight average of a model compiled with a Keras optimizer's `use_ema=True` (Adam keeps
    it, so Keras's backups hold it): `fit` validates the average, and after every epoch the trained
    weights too, on the same data (`val_loss_unaveraged`, `val_accuracy_unaveraged` in the logs:
    what a run without the average logs). Comes before the callbacks that read the logs."""

    def __init__(self, validation_data):
        super().__init__()
        self.validation_data = validation_data

    def applied(self):
        return optimizer_average_applied(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_accuracy" in logs:
            x, y = self.validation_data
            raw = self.model.evaluate(x, y, batch_size=200, verbose=0, return_dict=True)
            logs["val_loss_unaveraged"], logs["val_accuracy_unaveraged"] = raw["loss"], raw["accuracy"]


@contextlib.contextmanager
def optimizer_average_applied(model):
    """Inside, `model` holds its optimizer's moving average of its trainable weights (a Keras
    optimizer with `use_ema=True`, as `draw-tf train_classifier --weight_average` compiles it); the
    trained weights come back after."""
    with values_kept(model.trainable_variables):
        model.optimizer.finalize_variable_values(model.trainable_variables)  # writes the average, for use_ema
        yield


def load_weight_average(model, checkpoint_path):
    """Puts the weight average stored in a training checkpoint into `model`'s trainable weights;
    returns False (and changes nothing) when the checkpoint holds none."""
    reader = tf.train.load_checkpoint(checkpoint_path)
    shapes = reader.get_variable_to_shape_map()
    keys = [f"{CHECKPOINT_KEY}/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(len(model.trainable_variables))]
    stored = sorted(k for k in shapes if k.startswith(CHECKPOINT_KEY + "/"))
    if not stored:
        return False
    expected = [list(v.shape) for v in model.trainable_variables]
    if sorted(keys) != stored or [shapes[k] for k in keys] != expected:
        raise ValueError(
            f"The weight average in {checkpoint_path!r} does not fit this model: expected {len(keys)} weights of shapes "
            f"{expected}, received {len(stored)} of shapes {[shapes[k] for k in stored]}."
        )
    for key, weight in zip(keys, model.trainable_variables):
        weight.assign(reader.get_tensor(key))
    return True


def load_checkpoint_weights(model, checkpoint_path, which="average"):
    """Puts the weights of a training checkpoint into `model`'s trainable weights: its weight average
    (`which="average"`; an error if it holds none) or the trained weights (`which="raw"`)."""
    if which == "average":
        if not load_weight_average(model, checkpoint_path):
            raise ValueError(
                f"Expected a weight average in checkpoint {checkpoint_path!r} (a run with --weight_average), "
                "received a checkpoint without one; use its raw weights instead."
            )
    elif which == "raw":
        tf.train.Checkpoint(model=model).read(checkpoint_path).expect_partial().assert_existing_objects_matched()
    else:
        raise ValueError(f"which must be 'average' or 'raw', received {which!r}.")


CHECKPOINT_KEY = "weight_average"  # its name in a training checkpoint (draw_tf.training._TrainingState)
