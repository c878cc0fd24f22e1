"""draw_tf.optimizer.RestartableAdam: Keras's Adam, except that after a restore with fresh moments
its bias correction starts again, so its first steps are a new Adam's, not several times larger."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from draw_tf.optimizer import RestartableAdam, adam_with_decay

STEPS_BEFORE = 18_000  # the step counter of a run restored after 36 epochs of 500 steps


def _updates(optimizer, gradients, iterations=0):
    """The weights after applying `gradients` (a list of arrays) one by one to a zero weight."""
    variable = keras.Variable(np.zeros_like(gradients[0]))
    optimizer.build([variable])
    optimizer.iterations.assign(iterations)
    trajectory = []
    for g in gradients:
        optimizer.apply([tf.constant(g)], [variable])
        trajectory.append(variable.numpy().copy())
    return np.array(trajectory)


def _gradients(steps=30, size=64, seed=0):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-4, 1, size)  # weights whose gradients differ by orders of magnitude
    return [(scale * rng.uniform(0.5, 1.5, size)).astype(np.float32) for _ in range(steps)]


def test_without_a_restart_it_is_keras_adam_update_for_update():
    gradients = _gradients()
    for iterations in (0, STEPS_BEFORE):
        expected = _updates(keras.optimizers.Adam(1e-3), gradients, iterations)
        np.testing.assert_array_equal(_updates(RestartableAdam(1e-3), gradients, iterations), expected)


def test_restarted_moments_step_as_a_new_adam_does():
    gradients = _gradients()
    restarted = RestartableAdam(1e-3)
    restarted.moments_start = STEPS_BEFORE
    new = _updates(keras.optimizers.Adam(1e-3), gradients, iterations=0)
    np.testing.assert_allclose(_updates(restarted, gradients, STEPS_BEFORE), new, rtol=1e-5, atol=1e-9)
    # A new Adam's every step is about the rate; Keras's Adam at step 18,000 with zero moments (no
    # bias correction) takes first steps 3-6 times larger, which is what this class is for.
    assert np.abs(new[0]).max() <= 1e-3 * (1 + 1e-5)
    shocked = _updates(keras.optimizers.Adam(1e-3), gradients, iterations=STEPS_BEFORE)
    assert np.abs(shocked[0]).min() > 3 * 1e-3
    assert np.abs(shocked[9] - shocked[8]).mean() > 4 * np.abs(new[9] - new[8]).mean()


def test_its_step_counter_still_drives_the_learning_rate_schedule():
    """Restarted at step 200 of a schedule halving the rate every 100 steps, its first step is a new
    Adam's at the schedule's rate of step 200."""
    gradients = _gradients(steps=1)
    optimizer = adam_with_decay(1e-3, lr_decay=0.5, steps_per_epoch=100)
    optimizer.moments_start = 200
    restarted = _updates(optimizer, gradients, iterations=200)
    new = _updates(keras.optimizers.Adam(1e-3 * 0.5**2), gradients)
    np.testing.assert_allclose(restarted, new, rtol=1e-5)


def test_the_checkpoint_keeps_the_restart_and_older_checkpoints_have_none(tmp_path, tiny_config):
    from draw_tf import Draw, training

    def state(model_dir, moments_start=None):
        model = Draw(tiny_config, seed=0)
        model.compile(optimizer=adam_with_decay(1e-3))
        model.optimizer.build(model.trainable_variables)
        return training._TrainingState(model, str(model_dir))

    restarted = state(tmp_path / "restarted")
    restarted.moments_start.assign(STEPS_BEFORE)
    restarted.save(1)
    again = state(tmp_path / "restarted")
    assert again.restore() and again.model.optimizer.moments_start == STEPS_BEFORE
    # a checkpoint written before adam_moments_start existed: Keras's Adam, as it trained then
    older = state(tmp_path / "older")
    items = {k: v for k, v in older._all_items.items() if k != "adam_moments_start"}
    tf.train.CheckpointManager(tf.train.Checkpoint(**items), str(tmp_path / "older" / training.CHECKPOINT_DIR), 3).save()
    older = state(tmp_path / "older")
    assert older.restore() and "adam_moments_start" in older.withheld and older.model.optimizer.moments_start == 0


def test_a_run_compiled_with_it_loads_with_plain_keras_in_a_fresh_process(tmp_path, tiny_config):
    from draw_tf import Draw

    model = Draw(tiny_config, seed=0)
    model.compile(optimizer=adam_with_decay(1e-3))
    path = str(tmp_path / "model.keras")
    model.save(path)
    script = f"import keras, draw_tf; print(type(keras.models.load_model({path!r}).optimizer).__name__)"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "RestartableAdam"


def test_it_round_trips_through_keras_serialization():
    optimizer = adam_with_decay(2e-3)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert type(restored) is RestartableAdam and restored.get_config() == optimizer.get_config()
