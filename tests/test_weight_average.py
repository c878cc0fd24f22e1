"""`draw-tf train --weight_average=M`: the moving average of the weights follows its definition
after every step, is what the run validates, keeps as its best epoch, saves and loads, resumes
exactly, and can be switched on for a run that trained without it; the raw weights' validation
in the log is the one a run without the average logs."""

import glob
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from draw_tf import get_preset, training

CONFIG = get_preset("quick", time_steps=3, encoder_size=16, decoder_size=16, z_size=4)
RUN = dict(dataset="embedded", batch_size=50, seed=3, steps_per_epoch=4, save_every_steps=3, verbose=0, jit_loss=False)
M = 0.8


class Recorder(keras.callbacks.Callback):
    """The raw weights when training begins and after every step, and the weights the model holds
    while `fit` validates."""

    def __init__(self):
        super().__init__()
        self.start, self.steps, self.validated = None, [], []

    def _values(self):
        return [v.numpy().copy() for v in self.model.trainable_variables]

    def on_train_begin(self, logs=None):
        self.start = self._values()

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self._values())

    def on_test_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.validated.append(self._values())


def _average(start, steps):
    average = [a.copy() for a in start]
    for weights in steps:
        average = [M * a + (1 - M) * w for a, w in zip(average, weights)]
    return average


def _assert_close(actual, expected):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _trainable(model):
    return [v.numpy() for v in model.trainable_variables]


def test_the_average_is_what_the_run_validates_keeps_and_loads(tmp_path):
    model_dir = str(tmp_path)
    recorder = Recorder()
    model, _ = training.train(CONFIG, model_dir, epochs=2, weight_average=M, callbacks=[recorder], **RUN)
    assert len(recorder.steps) == 8
    after = {epoch: _average(recorder.start, recorder.steps[: 4 * epoch]) for epoch in (1, 2)}
    # fit validated the average of each epoch, not the raw weights
    _assert_close(recorder.validated[0], after[1])
    _assert_close(recorder.validated[1], after[2])
    assert max(np.abs(a - b).max() for a, b in zip(after[2], recorder.steps[-1])) > 1e-4
    # a model_dir and its final .keras file load as the average; train() returns the raw weights
    _assert_close(_trainable(training.load_model(model_dir)), after[2])
    _assert_close(_trainable(training.load_keras_file(os.path.join(model_dir, training.FINAL_MODEL))), after[2])
    _assert_close(_trainable(model), recorder.steps[-1])
    # the best epoch's file holds the average of that epoch
    log = training.read_training_log(os.path.join(model_dir, training.TRAINING_LOG))
    best = min(log, key=lambda r: r["val_loss"])["epoch"]
    [(path, epoch)] = training.best_epoch_files(model_dir)
    assert epoch == best
    model = training.load_model(model_dir)
    model.load_weights(path)
    _assert_close(_trainable(model), after[best])
    # the log has both validations: the average's and the raw weights'
    for record in log:
        assert np.isfinite(record["val_loss_unaveraged"]) and record["val_loss_unaveraged"] != record["val_loss"]
        assert record["val_loss_unaveraged"] == pytest.approx(
            record["val_reconstruction_unaveraged"] + record["val_kl_unaveraged"], rel=1e-5
        )


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch = (epoch, step), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch + 1) == self.at:
            raise Interrupt(self.at)


@pytest.mark.slow  # two training runs and a resumption
def test_a_run_interrupted_mid_epoch_resumes_its_average_exactly(tmp_path):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    training.train(CONFIG, straight, epochs=2, weight_average=M, **RUN)
    with pytest.raises(Interrupt):  # after the checkpoint at step 3 of epoch 1 (0-based), before the epoch's end
        training.train(CONFIG, resumed, epochs=2, weight_average=M, callbacks=[InterruptAt(1, 4)], **RUN)
    training.train(CONFIG, resumed, epochs=2, weight_average=M, **RUN)
    for a, b in zip(training.load_model(straight).weights, training.load_model(resumed).weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    logs = [training.read_training_log(os.path.join(d, training.TRAINING_LOG)) for d in (straight, resumed)]
    for key in ("val_loss", "val_loss_unaveraged"):
        assert [r[key] for r in logs[0]] == [r[key] for r in logs[1]]


@pytest.mark.slow  # two training runs
def test_the_raw_weights_validation_is_what_a_run_without_the_average_logs(tmp_path):
    """Same noise: the average changes neither training nor the noise later validations draw."""
    plain, averaged = str(tmp_path / "plain"), str(tmp_path / "averaged")
    training.train(CONFIG, plain, epochs=2, **RUN)
    training.train(CONFIG, averaged, epochs=2, weight_average=M, **RUN)
    logs = [training.read_training_log(os.path.join(d, training.TRAINING_LOG)) for d in (plain, averaged)]
    for key in ("loss", "reconstruction", "kl"):
        assert [r["val_" + key] for r in logs[0]] == [r[f"val_{key}_unaveraged"] for r in logs[1]]
        assert [r[key] for r in logs[0]] == [r[key] for r in logs[1]]  # training itself is unchanged


@pytest.mark.slow  # a training run resumed twice
def test_switched_on_when_resuming_it_starts_at_the_restored_weights_and_is_checkpointed_from_then(tmp_path):
    model_dir = str(tmp_path)
    training.train(CONFIG, model_dir, epochs=1, **RUN)
    plain = _trainable(training.load_model(model_dir))
    recorder = Recorder()
    training.train(CONFIG, model_dir, epochs=2, weight_average=M, callbacks=[recorder], **RUN)
    _assert_close(recorder.start, plain)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, training.CHECKPOINT_DIR))
    assert any(name.startswith("weight_average/") for name, _ in tf.train.list_variables(latest))
    _assert_close(_trainable(training.load_model(model_dir)), _average(plain, recorder.steps))
    # resumed again without saying (as the run had it), it continues the stored average
    more = Recorder()
    training.train(CONFIG, model_dir, epochs=3, callbacks=[more], **RUN)
    _assert_close(_trainable(training.load_model(model_dir)), _average(plain, recorder.steps + more.steps))
    assert "val_loss_unaveraged" in training.read_training_log(os.path.join(model_dir, training.TRAINING_LOG))[-1]


@pytest.mark.slow  # a training run resumed twice
def test_when_the_checkpoints_with_an_average_are_unreadable_an_older_one_without_still_resumes(tmp_path):
    model_dir = str(tmp_path)
    training.train(CONFIG, model_dir, epochs=1, **RUN)  # checkpoints after steps 3 and 4
    training.train(CONFIG, model_dir, epochs=2, weight_average=M, **RUN)  # after steps 7 and 8, with the average
    for step in (7, 8):
        [data] = glob.glob(os.path.join(model_dir, training.CHECKPOINT_DIR, f"ckpt-{step}.data-*"))
        with open(data, "r+b") as f:
            f.truncate(16)
    plain = _trainable(training.load_model(model_dir))  # ckpt-4: no average, the raw weights of epoch 1
    recorder = Recorder()
    training.train(CONFIG, model_dir, epochs=2, weight_average=M, callbacks=[recorder], **RUN)
    _assert_close(_average(recorder.start, []), plain)
    _assert_close(_trainable(training.load_model(model_dir)), _average(plain, recorder.steps))


@pytest.mark.parametrize("bad", [1.0, -0.5, True, "0.9"])
def test_a_bad_momentum_is_refused_before_anything_is_written(tmp_path, bad):
    with pytest.raises(ValueError, match=rf"weight_average must be 0 \(off\) or a momentum in \(0, 1\), received {bad!r}"):
        training.train(CONFIG, str(tmp_path / "run"), epochs=1, weight_average=bad, **RUN)
    assert not (tmp_path / "run").exists()


def test_the_command_line_refuses_a_bad_momentum_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "draw_tf", "train", "--weight_average=1", f"--model_dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "argument --weight_average: must be 0 (off) or a momentum in (0, 1), received 1" in result.stderr
    assert not (tmp_path / "run").exists()
