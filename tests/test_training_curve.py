"""benchmarks.training_curve and classifier_curve: the plot and summary of a run's log, a second
run against it, and a classifier's warm restart after the run it started from."""

import json

import pytest

from benchmarks import classifier_curve, training_curve


def _write_log(path, val_losses):
    with open(path, "w") as f:
        for epoch, val in enumerate(val_losses, start=1):
            f.write(json.dumps({"epoch": epoch, "loss": val + 1.0, "val_loss": val, "total_wall_seconds": 600.0 * epoch}) + "\n")


def test_a_second_run_is_compared_at_equal_epochs(tmp_path, capsys):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    _write_log(first, [100.0, 95.0, 93.0])
    _write_log(second, [98.0, 94.5])
    output = tmp_path / "curve.png"
    training_curve.main([f"--log={second}", f"--compare={first}", f"--output={output}"])
    result = json.loads(capsys.readouterr().out)
    assert result["validation_minus_compared_run_at_equal_epochs"] == {"1": -2.0, "2": -0.5}
    assert result["best_epoch"] == 2 and result["best_validation_negative_elbo"] == 94.5
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _write_classifier_log(model_dir, val_errors):
    """A train_classifier training_log.csv (0-based epochs, accuracies)."""
    model_dir.mkdir()
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss,wall_seconds"]
    rows += [f"{e},{1 - err - 0.01},0.3,{1 - err},0.2,60.0" for e, err in enumerate(val_errors)]
    (model_dir / "training_log.csv").write_text("\n".join(rows) + "\n")
    return model_dir / "training_log.csv"


def test_a_warm_restart_is_drawn_after_the_run_it_started_from(tmp_path, capsys):
    earlier = _write_classifier_log(tmp_path / "long", [0.10, 0.06, 0.05])
    _write_classifier_log(tmp_path / "warm", [0.045, 0.04])
    output = tmp_path / "curve.png"
    classifier_curve.main([f"--run={tmp_path / 'warm'}", f"--earlier={earlier}", f"--output={output}"])
    result = json.loads(capsys.readouterr().out)
    # the restart's two epochs follow the earlier run's three: its best (0.04) is epoch 5 of 5
    assert result["epochs"] == 5 and result["warm_restart_after_epoch"] == 3
    assert result["best_epoch"] == 5 and result["best_validation_error_percent"] == 4.0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_earlier_log_is_refused_in_one_line(tmp_path, capsys):
    _write_classifier_log(tmp_path / "warm", [0.045])
    with pytest.raises(SystemExit):
        classifier_curve.main([f"--run={tmp_path / 'warm'}", f"--earlier={tmp_path / 'nope.csv'}", f"--output={tmp_path / 'c.png'}"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--earlier must be a train_classifier training_log.csv" in error and "nope.csv" in error
    assert not (tmp_path / "c.png").exists()
