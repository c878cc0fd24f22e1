"""A short real training run on binarized MNIST beats the independent-pixel baseline (~206 nats)."""

import keras
import numpy as np
import pytest

from draw_tf import Draw, data, get_preset


@pytest.mark.timeout(600) if hasattr(pytest.mark, "timeout") else (lambda f: f)
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
