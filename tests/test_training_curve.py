"""benchmarks.training_curve: the plot and summary of a run's log, and a second run against it."""

import json

from benchmarks import training_curve


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
