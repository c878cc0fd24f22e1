"""The learning-rate halving rule (`draw_tf.plateau`, `train(lr_halving=...)`): it decides on the
real run's log as that run was halved by hand, and a resumed run halves exactly as an uninterrupted one."""

import glob
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
    records = training.read_training_log(SHIPPED_RUN_LOG)
    first_phase = [r for r in records if r["epoch"] <= 85]
    assert _epochs_where_it_fires(first_phase) == [84]
    assert _epochs_where_it_fires(records[:102]) == [84]  # and not in the 5e-4 phase to epoch 102
    assert [r["epoch"] for r in records[:102]] == list(range(1, 103))
    # the window counts only epochs at the current rate: epoch 100 is the 15th at 5e-4, so the
    # first comparison at that rate is epoch 101's with epoch 86's
    assert len(plateau.current_phase(records[:100])) == 15


def test_a_restored_run_starts_at_the_rate_the_rule_left():
    from draw_tf.pretrained_models import _rate_after

    records = training.read_training_log(SHIPPED_RUN_LOG)
    rule = {"lr_halving": [0.3, 15]}
    assert _rate_after(records[:83], rule) == pytest.approx(1e-3)
    assert _rate_after(records[:84], rule) == pytest.approx(5e-4)  # the rule fired at epoch 84
    assert _rate_after(records[:84], {}) == pytest.approx(1e-3)  # no rule: the log's last rate
    assert _rate_after(records[:100], rule) == pytest.approx(5e-4)


def test_a_synthetic_log():
    rate = lambda e: 1e-3 if e <= 20 else 5e-4  # noqa: E731
    values = [100 - e for e in range(1, 21)] + [80 - 0.01 * e for e in range(1, 21)]
    records = [dict(epoch=e, val_loss=v, learning_rate=rate(e)) for e, v in enumerate(values, 1)]
    assert _epochs_where_it_fires(records, 0.3, 15) == [36, 37, 38, 39, 40]  # 15 epochs into the slow phase
    assert _epochs_where_it_fires(records, 0.1, 15) == []  # 0.15 gained in 15 epochs is enough
    assert _epochs_where_it_fires(records, 1.5, 1) == list(range(2, 21)) + list(range(22, 41))


@pytest.mark.parametrize("rule", ["0.3", "0.3,15,2", "x,15", "0,15", "-1,15", "nan,15", "0.3,0", "0.3,1.5", "0.3,1_5", "",
                                  (0.3, 1.5), (0.3, True), [1, 2, 3]])
def test_bad_rules_are_refused(rule):
    with pytest.raises(ValueError) as error:
        plateau.check_rule(rule)
    assert str(error.value) == (
        f"lr_halving must be GAIN,EPOCHS (nats > 0, whole epochs >= 1), e.g. 0.3,15, or off; received {rule!r}."
    )


def test_good_rules():
    assert plateau.check_rule("0.3,15") == plateau.check_rule(" 0.3, 15") == (0.3, 15)
    assert plateau.check_rule([0.3, 15]) == plateau.check_rule((0.3, 15.0)) == (0.3, 15)
    assert plateau.check_rule("off") is None and plateau.check_rule(None) is None


CONFIG = get_preset("quick", time_steps=2, encoder_size=16, decoder_size=16, z_size=4)
RUN = dict(dataset="embedded", batch_size=50, seed=3, steps_per_epoch=3, num_samples=4, verbose=0, jit_loss=False,
           learning_rate=4e-3, lr_halving=(1e9, 1))  # every second epoch at a rate gains < 1e9: halve


def _rates(model_dir):
    return [r["learning_rate"] for r in training.read_training_log(os.path.join(model_dir, training.TRAINING_LOG))]


@pytest.mark.slow  # six short training runs
def test_train_halves_and_a_resumed_run_halves_as_an_uninterrupted_one(tmp_path):
    runs = {name: str(tmp_path / name) for name in ("whole", "parts", "killed", "late")}
    training.train(CONFIG, runs["whole"], epochs=5, **RUN)
    np.testing.assert_allclose(_rates(runs["whole"]), [4e-3, 4e-3, 2e-3, 2e-3, 1e-3], rtol=1e-6)
    # stopped right after the halving at epoch 2, resumed without the flag: the run keeps its rule
    # and the rate its checkpoint holds
    training.train(CONFIG, runs["parts"], epochs=2, **RUN)
    training.train(CONFIG, runs["parts"], epochs=5, **dict(RUN, lr_halving=None))
    # killed after epoch 2's log record and before its checkpoint: epoch 2 is trained again and
    # decided again
    training.train(CONFIG, runs["killed"], epochs=2, **RUN)
    newest = max(glob.glob(os.path.join(runs["killed"], "checkpoints", "ckpt-*.index")), key=os.path.getmtime)
    for path in glob.glob(newest[: -len(".index")] + ".*"):
        os.remove(path)
    training.train(CONFIG, runs["killed"], epochs=5, **RUN)
    for name in ("parts", "killed"):
        assert _rates(runs[name]) == _rates(runs["whole"]), name
        for got, want in zip(training.load_model(runs[name]).weights, training.load_model(runs["whole"]).weights):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    # a run started without the rule and resumed with it: the rule judges its whole log from then on
    training.train(CONFIG, runs["late"], epochs=2, **dict(RUN, lr_halving="off"))
    training.train(CONFIG, runs["late"], epochs=5, **RUN)
    np.testing.assert_allclose(_rates(runs["late"]), [4e-3, 4e-3, 4e-3, 2e-3, 2e-3], rtol=1e-6)
    # refused, with nothing written: another rate on resume, a decaying rate
    before = sorted(os.listdir(runs["whole"])), open(os.path.join(runs["whole"], training.CONFIG_FILE)).read()
    with pytest.raises(ValueError, match="learning_rate 0.001 differs from 0.004, the one this run was last started with"):
        training.train(CONFIG, runs["whole"], epochs=6, **dict(RUN, lr_halving=None, learning_rate=1e-3))
    assert (sorted(os.listdir(runs["whole"])), open(os.path.join(runs["whole"], training.CONFIG_FILE)).read()) == before
    with pytest.raises(ValueError, match=r"lr_halving \(1000000000.0, 1\) \(the model_dir's config.json; pass lr_halving off\) "
                       "needs a constant rate"):
        training.train(CONFIG, runs["whole"], epochs=6, **dict(RUN, lr_halving=None, lr_decay=0.5))
    with pytest.raises(ValueError, match="needs a constant rate"):
        training.train(CONFIG, str(tmp_path / "decaying"), epochs=1, **dict(RUN, lr_decay=0.5))
    assert not (tmp_path / "decaying").exists()
