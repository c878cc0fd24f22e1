"""Training survives faults: killed with SIGKILL mid-epoch it resumes at the step of its last
checkpoint and ends where an uninterrupted run ends; a loss that stops being finite stops training
with a clear error and keeps the last good checkpoint."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import get_preset, training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A small model: what is checked (checkpoints, resumption, the data position) does not depend on its
# size. Epochs of 60 steps leave the killer time to act before the first epoch ends.
SMALL = dict(time_steps=4, encoder_size=32, decoder_size=32, z_size=8)
STEPS_PER_EPOCH, SAVE_EVERY = 60, 5
TIMEOUT = 900  # seconds one training process may take (a hang fails the test instead of blocking the run)
ARGS = [
    "train", "--preset=quick", "--set=" + ",".join(f"{k}={v}" for k, v in SMALL.items()), "--epochs=2",
    f"--steps_per_epoch={STEPS_PER_EPOCH}", "--batch_size=20", f"--save_every_steps={SAVE_EVERY}",
]


def _train_cmd(model_dir):
    return [sys.executable, "-m", "draw_tf", *ARGS, f"--model_dir={model_dir}"]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _latest_step(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, training.CHECKPOINT_DIR))
    return None if path is None else int(path.rsplit("-", 1)[1])


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_where_it_was(tmp_path):
    reference, killed = str(tmp_path / "uninterrupted"), str(tmp_path / "killed")
    # The uninterrupted run trains beside the run that is killed and resumed: they share nothing.
    log = open(tmp_path / "uninterrupted.log", "w+")
    uninterrupted = subprocess.Popen(_train_cmd(reference), env=_env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    proc = subprocess.Popen(_train_cmd(killed), env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + TIMEOUT
        while (_latest_step(killed) or 0) < SAVE_EVERY:  # the first mid-epoch checkpoint
            assert proc.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        saved = _latest_step(killed)
        assert SAVE_EVERY <= saved < STEPS_PER_EPOCH and saved % SAVE_EVERY == 0, saved  # killed inside the first epoch

        resumed = subprocess.run(_train_cmd(killed), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        match = re.search(r"Resuming from \S+ \(epoch (\d+), step (\d+)\)", resumed.stdout)
        assert match and (int(match[1]), int(match[2])) == (0, saved), resumed.stdout[-2000:]
        uninterrupted.wait(timeout=TIMEOUT)
        log.seek(0)
        assert uninterrupted.returncode == 0, log.read()[-3000:]
    finally:
        for p in (proc, uninterrupted):  # never leave a training process behind
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()

    a, b = training.load_model(reference), training.load_model(killed)
    assert _latest_step(killed) == _latest_step(reference) == 2 * STEPS_PER_EPOCH  # every step once: none lost, none repeated
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_allclose(vb.numpy(), va.numpy(), rtol=1e-4, atol=1e-5, err_msg=va.path)


# The two in-process tests start from copies of one model directory: two epochs of two steps
# (checkpoints ckpt-2 and ckpt-4, the final model).
CONFIG = get_preset("quick", grad_clip_norm=0.0, **SMALL)
KWARGS = dict(dataset="embedded", batch_size=20, lr_decay=0.99, validation=False, num_samples=4, verbose=0, jit_loss=False)


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("fault") / "run")
    training.train(CONFIG, model_dir, epochs=2, steps_per_epoch=2, **KWARGS)
    return model_dir


def _copy(trained_dir, tmp_path):
    return shutil.copytree(trained_dir, str(tmp_path / "run"))  # copy2: the files keep their times


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(trained_dir, tmp_path):
    model_dir = _copy(trained_dir, tmp_path)
    assert _latest_step(model_dir) == 4
    final_model = os.path.join(model_dir, training.FINAL_MODEL)
    before = os.path.getmtime(final_model)
    # Adam moves every weight by about the learning rate: 1e30 overflows a forward pass within a few
    # steps. (A schedule, not a constant: a constant learning rate is restored from the checkpoint.)
    with pytest.raises(FloatingPointError, match=r"the loss is (nan|inf) at epoch 3, step (\d+)\. The last good") as error:
        training.train(CONFIG, model_dir, epochs=3, steps_per_epoch=5, learning_rate=1e30, save_every_steps=1, **KWARGS)
    failed_step = int(re.search(r"step (\d+)", str(error.value))[1])
    assert failed_step >= 2 and f"ckpt-{4 + failed_step - 1}'" in str(error.value)
    assert _latest_step(model_dir) == 4 + failed_step - 1  # saved after the last step with a finite loss, not after
    restored = training.load_model(model_dir)
    assert all(np.all(np.isfinite(w.numpy())) for w in restored.weights)
    assert os.path.getmtime(final_model) == before  # the previous final model is not replaced


def test_unreadable_checkpoint_falls_back_to_the_previous_one(trained_dir, tmp_path):
    model_dir = _copy(trained_dir, tmp_path)
    checkpoints = os.path.join(model_dir, training.CHECKPOINT_DIR)
    previous = [w.numpy() for w in _restore(checkpoints, "ckpt-2")]
    data_file = os.path.join(checkpoints, "ckpt-4.data-00000-of-00001")
    with open(data_file, "r+b") as f:  # a disk fault: the newest checkpoint loses its tail
        f.truncate(os.path.getsize(data_file) // 2)
    model = training.load_model(model_dir)
    for w, expected in zip(model.weights, previous):
        np.testing.assert_array_equal(w.numpy(), expected)
    os.remove(os.path.join(checkpoints, "ckpt-2.index"))
    with pytest.raises(ValueError, match="Every checkpoint in .* is unreadable"):
        training.load_model(model_dir)


def _restore(checkpoints, name):
    from draw_tf import Draw

    model = Draw(CONFIG)
    tf.train.Checkpoint(model=model).restore(os.path.join(checkpoints, name)).expect_partial()
    return model.weights
