"""A run keeps the weights of its best epoch (lowest validation loss in its whole log), and `ship`
ships that epoch with the log up to it, whatever the run did afterwards."""

import json

import numpy as np
import pytest

from draw_tf import Draw, get_preset, pretrained_models, training

SMALL = dict(time_steps=2, encoder_size=8, decoder_size=8, z_size=2)
RUN = dict(dataset="embedded", batch_size=20, steps_per_epoch=2, num_samples=4, verbose=0, seed=1, jit_loss=False)


def _write_log(model_dir, val_losses):
    with open(model_dir / training.TRAINING_LOG, "w") as f:
        for epoch, loss in enumerate(val_losses, start=1):
            f.write(json.dumps({"epoch": epoch, "val_loss": loss}) + "\n")


def test_only_an_epoch_better_than_every_earlier_one_replaces_the_best_weights(tmp_path):
    model = Draw(get_preset("quick", **SMALL), seed=0)
    keeper = training.BestEpochWeights(str(tmp_path))
    keeper.set_model(model)
    _write_log(tmp_path, [float("nan"), 88.0, 89.0])  # TrainingLog has written epoch 3 (0-based 2) already
    keeper.on_epoch_end(2, {"val_loss": 89.0})
    assert training.best_epoch_files(str(tmp_path)) == []  # 89 does not beat epoch 2's 88 (a NaN epoch counts for nothing)
    _write_log(tmp_path, [float("nan"), 88.0, 89.0, 87.5])
    keeper.on_epoch_end(3, {"val_loss": 87.5})
    [(path, epoch)] = training.best_epoch_files(str(tmp_path))
    assert epoch == 4 and path.endswith("best-epoch-0004.weights.h5")
    kept = Draw(get_preset("quick", **SMALL), seed=0)
    kept.load_weights(path)
    for a, b in zip(kept.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _write_log(tmp_path, [float("nan"), 88.0, 89.0, 87.5, 87.0])
    keeper.on_epoch_end(4, {"val_loss": 87.0})
    assert [e for _, e in training.best_epoch_files(str(tmp_path))] == [5]  # the older best is gone
    _write_log(tmp_path, [float("nan"), 88.0, 89.0, 87.5, 87.0, float("nan")])
    keeper.on_epoch_end(5, {"val_loss": float("nan")})
    assert [e for _, e in training.best_epoch_files(str(tmp_path))] == [5]


@pytest.mark.slow  # training runs, then ship
def test_ship_takes_the_best_epoch_and_the_log_up_to_it(tmp_path):
    config = get_preset("quick", **SMALL)
    run_dir = tmp_path / "run"
    training.train(config, str(run_dir), epochs=3, **RUN)
    log = training.read_training_log(str(run_dir / training.TRAINING_LOG))
    best = min(log, key=lambda r: r["val_loss"])
    [(path, epoch)] = training.best_epoch_files(str(run_dir))
    assert epoch == best["epoch"]
    # A later epoch that is worse than the best (a run that went on) does not change what ships.
    with open(run_dir / training.TRAINING_LOG, "a") as f:
        f.write(json.dumps({**log[-1], "epoch": 4, "val_loss": best["val_loss"] + 5.0}) + "\n")
    result = pretrained_models.ship(str(run_dir), "tiny", str(tmp_path / "assets"))
    assert (result["epoch"], result["validation_negative_elbo"], result["run_epochs"]) == (epoch, best["val_loss"], 4)
    shipped = tmp_path / "assets" / "tiny"
    assert [r["epoch"] for r in training.read_training_log(str(shipped / "training_log.jsonl"))] == list(range(1, epoch + 1))
    kept, loaded = Draw(config), Draw(config)
    kept.load_weights(path)
    loaded.load_weights(str(shipped / "model.weights.h5"))
    for a, b in zip(kept.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Weights of an epoch the log does not know are refused, and the shipped model stays as it was.
    (run_dir / training.BEST_WEIGHTS.format(epoch=9)).write_bytes(open(path, "rb").read())
    before = (shipped / "result.json").read_text()
    with pytest.raises(ValueError, match=r"has no record of epoch 9, the epoch of the weights to ship"):
        pretrained_models.ship(str(run_dir), "tiny", str(tmp_path / "assets"))
    assert (shipped / "result.json").read_text() == before


@pytest.mark.slow  # training runs, then ship
def test_without_best_weights_ship_takes_the_latest_checkpoint_only_at_the_end_of_the_last_epoch(tmp_path):
    config = get_preset("quick", **SMALL)
    run_dir = tmp_path / "run"
    model, _ = training.train(config, str(run_dir), epochs=2, **RUN)
    for path, _ in training.best_epoch_files(str(run_dir)):  # a run from before best-epoch files
        (tmp_path / "run" / path.rsplit("/", 1)[1]).unlink()
    result = pretrained_models.ship(str(run_dir), "tiny", str(tmp_path / "assets"))
    assert result["epoch"] == 2
    loaded = Draw(config)
    loaded.load_weights(str(tmp_path / "assets" / "tiny" / "model.weights.h5"))
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    training._TrainingState(model, str(run_dir)).save(2, step=1)  # a checkpoint in the middle of epoch 3
    with pytest.raises(ValueError, match=r"latest checkpoint holds 2 finished epochs and 1 steps of the next, its log 2 epochs"):
        pretrained_models.ship(str(run_dir), "other", str(tmp_path / "assets"))
    assert not (tmp_path / "assets" / "other").exists()  # nothing written
