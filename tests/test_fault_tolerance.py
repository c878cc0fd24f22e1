"""Training survives faults: killed with SIGKILL mid-epoch it resumes at the step of its last
checkpoint and ends where an uninterrupted run ends; a loss that stops being finite stops training
with a clear error and keeps the last good checkpoint."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import get_preset, training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["train", "--preset=quick", "--epochs=2", "--steps_per_epoch=20", "--batch_size=20", "--save_every_steps=5"]


def _train_cmd(model_dir):
    return [sys.executable, "-m", "draw_tf", *ARGS, f"--model_dir={model_dir}"]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _latest_step(model_dir):
    path = tf.train.latest_checkpoint(os.path.join(model_dir, training.CHECKPOINT_DIR))
    return None if path is None else int(path.rsplit("-", 1)[1])


def test_sigkill_mid_epoch_resumes_where_it_was(tmp_path):
    reference = str(tmp_path / "uninterrupted")
    subprocess.run(_train_cmd(reference), env=_env(), cwd=REPO, check=True, capture_output=True, timeout=600)

    killed = str(tmp_path / "killed")
    proc = subprocess.Popen(_train_cmd(killed), env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 600
        while (_latest_step(killed) or 0) < 5:  # the first mid-epoch checkpoint (step 5 of 20)
            assert proc.poll() is None and time.time() < deadline, "training ended before its first checkpoint"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = _latest_step(killed)
    assert 5 <= saved < 20 and saved % 5 == 0, saved  # killed inside the first epoch

    resumed = subprocess.run(_train_cmd(killed), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    match = re.search(r"Resuming from \S+ \(epoch (\d+), step (\d+)\)", resumed.stdout)
    assert match and (int(match[1]), int(match[2])) == (0, saved), resumed.stdout[-2000:]

    a, b = training.load_model(reference), training.load_model(killed)
    assert _latest_step(killed) == _latest_step(reference) == 40  # every step run once: none lost, none repeated
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_allclose(vb.numpy(), va.numpy(), rtol=1e-4, atol=1e-5, err_msg=va.path)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model_dir = str(tmp_path / "run")
    config = get_preset("quick").replace(grad_clip_norm=0.0)
    kwargs = dict(dataset="embedded", batch_size=20, steps_per_epoch=5, lr_decay=0.99, validation=False,
                  num_samples=4, verbose=0)
    training.train(config, model_dir, epochs=1, **kwargs)
    final_model = os.path.join(model_dir, training.FINAL_MODEL)
    before = os.path.getmtime(final_model)
    # Adam moves every weight by about the learning rate: 1e30 overflows a forward pass within a few
    # steps. (A schedule, not a constant: a constant learning rate is restored from the checkpoint.)
    with pytest.raises(FloatingPointError, match=r"the loss is (nan|inf) at epoch 2, step (\d+)\. The last good") as error:
        training.train(config, model_dir, epochs=2, learning_rate=1e30, save_every_steps=1, **kwargs)
    failed_step = int(re.search(r"step (\d+)", str(error.value))[1])
    assert failed_step >= 2 and f"ckpt-{5 + failed_step - 1}'" in str(error.value)
    assert _latest_step(model_dir) == 5 + failed_step - 1  # saved after the last step with a finite loss, not after
    restored = training.load_model(model_dir)
    assert all(np.all(np.isfinite(w.numpy())) for w in restored.weights)
    assert os.path.getmtime(final_model) == before  # the previous final model is not replaced


def test_unreadable_checkpoint_falls_back_to_the_previous_one(tmp_path):
    model_dir = str(tmp_path / "run")
    kwargs = dict(dataset="embedded", batch_size=20, steps_per_epoch=2, validation=False, num_samples=4, verbose=0)
    training.train(get_preset("quick"), model_dir, epochs=2, **kwargs)
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

    model = Draw(get_preset("quick"))
    tf.train.Checkpoint(model=model).restore(os.path.join(checkpoints, name)).expect_partial()
    return model.weights
