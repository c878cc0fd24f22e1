"""A short real training run on binarized MNIST beats the independent-pixel baseline (~206 nats)."""

import keras
import numpy as np
import pytest

from draw_tf import Draw, data, get_preset

# A small model for the tests of the training machinery (schedules, checkpoints, configs), which
# do not depend on its size; the learning test uses the real `quick` preset.
SMALL = dict(time_steps=2, encoder_size=16, decoder_size=16, z_size=4)


@pytest.mark.slow
def test_few_hundred_steps_beat_the_marginal_baseline(shared_tfds_dir):
    keras.utils.set_random_seed(0)
    model = Draw(get_preset("quick"), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    train = data.make_dataset("binarized_mnist", "train", 100, shared_tfds_dir, seed=0).repeat()
    val = data.make_dataset("binarized_mnist", "validation", 500, shared_tfds_dir, shuffle=False).take(4)
    baseline = data.marginal_baseline_nll(np.concatenate([b.numpy() for b in val]))
    model.fit(train, steps_per_epoch=400, epochs=1, verbose=0)
    result = model.evaluate(val, return_dict=True, verbose=0)
    assert result["loss"] < baseline - 12, (result, baseline)
    assert result["kl"] > 2.0, result  # the posterior has not collapsed onto the prior
    assert result["loss"] == pytest.approx(result["reconstruction"] + result["kl"], rel=1e-4)


@pytest.mark.slow
def test_learning_rate_decays_per_epoch_and_resumes(tmp_path):
    from draw_tf import training

    config = get_preset("quick", **SMALL)
    kwargs = dict(dataset="embedded", batch_size=50, learning_rate=4e-3, lr_decay=0.5, steps_per_epoch=3,
                  validation=False, num_samples=4, verbose=0)
    model, _ = training.train(config, str(tmp_path), epochs=1, **kwargs)
    assert float(model.optimizer.learning_rate) == pytest.approx(4e-3 * 0.5, rel=1e-5)
    model, _ = training.train(config, str(tmp_path), epochs=2, **kwargs)  # resumes: the schedule continues
    assert float(model.optimizer.learning_rate) == pytest.approx(4e-3 * 0.25, rel=1e-5)
    constant = dict(kwargs, lr_decay=1.0, learning_rate=1e-3)
    training.train(config, str(tmp_path / "constant"), epochs=1, **constant)
    model, _ = training.train(config, str(tmp_path / "constant"), epochs=2, **dict(constant, learning_rate=5e-4))
    assert float(model.optimizer.learning_rate) == pytest.approx(5e-4)  # a new constant rate is used on resume
    with pytest.raises(ValueError, match="lr_decay must be a number in \\(0, 1\\]"):
        training.train(config, str(tmp_path / "other"), epochs=1, **{**kwargs, "lr_decay": 1.5})
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    "trained, change",
    [
        ({}, {"decoder_size": 64}),  # weights of other shapes (SMALL's decoder has 16 units)
        # A 28x28 read gives the encoder the same input size as the plain read, so every stored
        # weight fits, but the read's attention head is not in the checkpoint.
        ({"read_size": 0}, {"read_size": 28}),
    ],
)
def test_load_model_refuses_a_checkpoint_of_another_model(tmp_path, trained, change):
    import json

    from draw_tf import training

    model_dir = str(tmp_path / "run")
    training.train(get_preset("quick", **SMALL, **trained), model_dir, epochs=1, steps_per_epoch=1, batch_size=8,
                   validation=False, num_samples=4, verbose=0, jit_loss=False)  # (XLA: tests/test_xla.py)
    path = tmp_path / "run" / training.CONFIG_FILE
    stored = json.loads(path.read_text())
    stored["model"].update(change)  # config.json no longer describes the checkpoint
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="does not match this model"):
        training.load_model(model_dir)


def test_checkpoints_of_the_earlier_layout_still_load_and_resume(tmp_path):
    """Model directories written before checkpoints held the step and the noise state."""
    import tensorflow as tf

    from draw_tf import training

    config = get_preset("quick", **SMALL)
    model = Draw(config, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=tf.Variable(1, dtype=tf.int64))
    tf.train.CheckpointManager(checkpoint, str(tmp_path / training.CHECKPOINT_DIR), max_to_keep=3).save(1)
    training.write_json_atomic(str(tmp_path / training.CONFIG_FILE), {"model": config.to_dict()})
    loaded = training.load_model(str(tmp_path))
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _, history = training.train(config, str(tmp_path), epochs=2, steps_per_epoch=2, batch_size=8, validation=False,
                                num_samples=4, verbose=0, jit_loss=False)
    assert len(history["loss"]) == 1  # resumed after epoch 1


class _InitialCanvas(keras.callbacks.Callback):
    """Keeps c_0 as training begins, before any step."""

    def on_train_begin(self, logs=None):
        self.value = self.model.cell.initial_canvas.numpy()


@pytest.mark.slow  # a training run and its resumption
def test_a_new_run_starts_its_canvas_at_the_data_mean_and_a_resumed_one_keeps_its_own(tmp_path):
    from draw_tf import training

    config = get_preset("quick", **SMALL)
    run = dict(dataset="embedded", steps_per_epoch=2, batch_size=8, validation=False, num_samples=4, verbose=0,
               jit_loss=False)
    first = _InitialCanvas()
    training.train(config, str(tmp_path / "run"), epochs=1, callbacks=[first], **run)
    mean = np.clip(data.embedded_images("train").astype(np.float64).mean(axis=0), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(first.value, np.log(mean / (1 - mean)), atol=1e-4)
    assert first.value.min() < -6.8 and first.value.max() > 0  # dark border, inked middle
    trained = training.load_model(str(tmp_path / "run")).cell.initial_canvas.numpy()
    assert not np.allclose(trained, first.value)  # c_0 is learned
    resumed = _InitialCanvas()
    training.train(config, str(tmp_path / "run"), epochs=2, callbacks=[resumed], **run)
    np.testing.assert_array_equal(resumed.value, trained)
    grey = _InitialCanvas()
    training.train(config, str(tmp_path / "grey"), epochs=1, callbacks=[grey], canvas_init="zeros", **run)
    assert not grey.value.any()
    with pytest.raises(ValueError, match=r"canvas_init must be one of \('data', 'zeros'\), received 'mean'"):
        training.train(config, str(tmp_path / "bad"), epochs=1, canvas_init="mean", **run)
