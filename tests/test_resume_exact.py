"""A run interrupted anywhere and resumed ends with exactly the weights of an uninterrupted run.

The interruptions are exceptions raised by a callback at chosen moments (mid-epoch, right after an
epoch's checkpoint, during validation, between two `train` calls, a checkpoint left corrupt): the
process's state after that moment is lost and a new `train` call starts from what is on disk, as
after a kill. tests/test_fault_tolerance.py does it with real SIGKILLs.
"""

import glob
import os

import keras
import numpy as np
import pytest

from draw_tf import get_preset, training

CONFIG = get_preset("quick", time_steps=3, encoder_size=16, decoder_size=16, z_size=4)
# Without XLA (jit_loss=False): resumption does not depend on it, and it compiles in seconds instead
# of tens of seconds per run. tests/test_fault_tolerance.py resumes the CLI, with XLA, after SIGKILLs;
# tests/test_xla.py checks that XLA trains as the plain graph does.
RUN = dict(dataset="embedded", batch_size=50, seed=3, steps_per_epoch=8, save_every_steps=3, verbose=0, jit_loss=False)
EPOCHS = 3


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises `Interrupt` at the first matching event: ("batch", epoch, step), ("epoch_end", epoch) or
    ("validation", epoch), epochs counted from 0 and steps from 1."""

    def __init__(self, event):
        super().__init__()
        self.event = event
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.event[0] == "batch" and self.event[1:] == (self.epoch, batch + 1):
            raise Interrupt(self.event)

    def on_test_batch_end(self, batch, logs=None):
        if self.event == ("validation", self.epoch) and batch == 0:
            raise Interrupt(self.event)

    def on_epoch_end(self, epoch, logs=None):
        if self.event == ("epoch_end", epoch):
            raise Interrupt(self.event)


class DrawsNoise(keras.callbacks.Callback):
    """A user's callback that reconstructs images every epoch with the model's own posterior noise
    (its seed generator): it must not change what training draws."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.reconstruct(np.zeros((2, *CONFIG.image_shape), np.float32))


def _weights(model_dir):
    return [v.numpy() for v in training.load_model(model_dir).weights]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("uninterrupted"))
    training.train(CONFIG, model_dir, epochs=EPOCHS, callbacks=[DrawsNoise()], **RUN)
    return _weights(model_dir), training.read_training_log(os.path.join(model_dir, training.TRAINING_LOG))


@pytest.mark.slow  # three training runs per case
@pytest.mark.parametrize(
    "event",
    [
        pytest.param(("batch", 1, 5), id="mid-epoch"),
        pytest.param(("epoch_end", 0), id="after-epoch-checkpoint"),  # where the earlier drift was
        pytest.param(("validation", 1), id="during-validation"),
        pytest.param(("fit_boundary", 1), id="between-train-calls"),
        pytest.param(("corrupt_checkpoint", 1, 6), id="corrupt-checkpoint"),
    ],
)
def test_resumed_run_equals_uninterrupted(tmp_path, uninterrupted, event):
    expected, expected_log = uninterrupted
    model_dir = str(tmp_path / "run")
    if event[0] == "fit_boundary":  # `draw-tf train --epochs=2`, then `--epochs=3`
        training.train(CONFIG, model_dir, epochs=event[1] + 1, callbacks=[DrawsNoise()], **RUN)
    elif event[0] == "corrupt_checkpoint":
        with pytest.raises(Interrupt):
            training.train(CONFIG, model_dir, epochs=EPOCHS, callbacks=[DrawsNoise(), InterruptAt(("batch",) + event[1:])], **RUN)
        # the newest checkpoint was being written when the process died: its data file is truncated
        newest = max(glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.data-*")), key=os.path.getmtime)
        with open(newest, "r+b") as f:
            f.truncate(os.path.getsize(newest) // 2)
    else:
        with pytest.raises(Interrupt):
            training.train(CONFIG, model_dir, epochs=EPOCHS, callbacks=[DrawsNoise(), InterruptAt(event)], **RUN)
    training.train(CONFIG, model_dir, epochs=EPOCHS, callbacks=[DrawsNoise()], **RUN)
    for got, want in zip(_weights(model_dir), expected):
        np.testing.assert_array_equal(got, want)
    # one log record per epoch, with the uninterrupted run's losses
    log = training.read_training_log(os.path.join(model_dir, training.TRAINING_LOG))
    assert [r["epoch"] for r in log] == list(range(1, EPOCHS + 1))
    assert [r["steps"] for r in log] == [r["steps"] for r in expected_log]
