"""The learning-rate halving rule (`draw_tf.plateau`, `train(lr_halving=...)`): it decides on the
real run's log as that run was halved by hand, and a resumed run halves exactly as an uninterrupted one."""

import json
import os

import numpy as np
import pytest

from draw_tf import get_preset, plateau, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_RUN_LOG = os.path.join(ROOT, "benchmarks", "results", "mnist_const_training_log.jsonl")


def _epochs_where_it_fires(records, min_gain=0.3, window=15):
    return [r["epoch"] for i, r in enumerate(records) if plateau.progress_too_slow(records[: i + 1], min_gain, window)]


def test_the_rule_fires_where_the_shipped_run_was_halved():
    # mnist_const ran at 1e-3 to epoch 85 and at 5e-4 from 86 (by hand, under this rule, which
    # fired at epoch 84: 83.15 nats against epoch 69's 83.42).
    with open(SHIPPED_RUN_LOG) as f:
        records = [json.loads(line) for line in f if line.strip()]
    first_phase = [r for r in records if r["epoch"] <= 85]
    assert _epochs_where_it_fires(first_phase) == [84]
    assert _epochs_where_it_fires(records[:102]) == [84]  # and not in the 5e-4 phase to epoch 102
    assert [r["epoch"] for r in records[:102]] == list(range(1, 103))
    # the window counts only epochs at the current rate: 15 epochs at 5e-4 exist from epoch 101
    assert len(plateau.current_phase(records[:100])) == 15


def test_a_synthetic_log():
    rate = lambda e: 1e-3 if e <= 20 else 5e-4  # noqa: E731
    values = [100 - e for e in range(1, 21)] + [80 - 0.01 * e for e in range(1, 21)]
    records = [dict(epoch=e, val_loss=v, learning_rate=rate(e)) for e, v in enumerate(values, 1)]
    assert _epochs_where_it_fires(records, 0.3, 15) == [36, 37, 38, 39, 40]  # 15 epochs into the slow phase
    assert _epochs_where_it_fires(records, 0.1, 15) == []  # 0.15 gained in 15 epochs is enough
    assert _epochs_where_it_fires(records, 1.5, 1) == list(range(2, 21)) + list(range(22, 41))


@pytest.mark.parametrize("text", ["0.3", "0.3,15,2", "x,15", "0,15", "-1,15", "nan,15", "0.3,0", "0.3,1.5", ""])
def test_bad_rules_are_refused(text):
    with pytest.raises(ValueError, match=f"lr_halving must be GAIN,EPOCHS .*received {text!r}"):
        plateau.check_rule(text)


def test_good_rules():
    assert plateau.check_rule("0.3,15") == (0.3, 15)
    assert plateau.check_rule([0.3, 15]) == (0.3, 15)
    assert plateau.check_rule("off") is None and plateau.check_rule(None) is None


CONFIG = get_preset("quick", time_steps=2, encoder_size=16, decoder_size=16, z_size=4)
RUN = dict(dataset="embedded", batch_size=50, seed=3, steps_per_epoch=3, num_samples=4, verbose=0, jit_loss=False,
           learning_rate=4e-3, lr_halving=(1e9, 1))  # every second epoch at a rate gains < 1e9: halve


@pytest.mark.slow  # three short training runs
def test_train_halves_and_a_resumed_run_halves_as_an_uninterrupted_one(tmp_path):
    whole, parts = str(tmp_path / "whole"), str(tmp_path / "parts")
    training.train(CONFIG, whole, epochs=5, **RUN)
    training.train(CONFIG, parts, epochs=3, **RUN)
    # resumed without the flag: the run keeps its rule and the rate its checkpoint holds
    training.train(CONFIG, parts, epochs=5, **dict(RUN, lr_halving=None, learning_rate=1.0))
    logs = [training.read_training_log(os.path.join(d, training.TRAINING_LOG)) for d in (whole, parts)]
    for log in logs:
        np.testing.assert_allclose([r["learning_rate"] for r in log], [4e-3, 4e-3, 2e-3, 2e-3, 1e-3], rtol=1e-6)
    assert [r["val_loss"] for r in logs[0]] == [r["val_loss"] for r in logs[1]]
    for got, want in zip(training.load_model(parts).weights, training.load_model(whole).weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(ValueError, match="lr_halving needs a constant rate"):
        training.train(CONFIG, str(tmp_path / "decaying"), epochs=1, **dict(RUN, lr_decay=0.5))
    assert not (tmp_path / "decaying").exists()
