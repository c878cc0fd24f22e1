"""The command line, run as a user runs it: train (and resume), evaluate, sample."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "draw_tf", *args], capture_output=True, text=True, env=env, timeout=600, cwd=REPO
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def _last_json(text):
    return json.loads(text[text.rindex("{\n"):])


def test_train_resume_evaluate_sample(tmp_path):
    from PIL import Image

    model_dir = str(tmp_path / "run")
    out = run_cli("train", f"--model_dir={model_dir}", "--epochs=1", "--steps_per_epoch=3", "--batch_size=20")
    summary = _last_json(out.stdout)
    assert np.isfinite(summary["loss"]) and np.isfinite(summary["val_loss"])
    assert os.path.exists(os.path.join(model_dir, "samples", "epoch_0001.png"))
    assert os.path.exists(os.path.join(model_dir, "model.keras"))

    out = run_cli("train", f"--model_dir={model_dir}", "--epochs=2", "--steps_per_epoch=3", "--batch_size=20")
    assert "Resuming from" in out.stdout and "(epoch 1, step 0)" in out.stdout
    assert os.path.exists(os.path.join(model_dir, "samples", "epoch_0002.png"))
    assert not os.path.exists(os.path.join(model_dir, "samples", "epoch_0003.png"))

    out = run_cli("evaluate", f"--model_dir={model_dir}", "--iwae_samples=3", "--max_batches=2", "--batch_size=50")
    result = _last_json(out.stdout)
    assert result["num_images"] == 100 and result["split"] == "validation"
    assert result["iwae_num_samples"] == 3 and 0 < result["negative_elbo"] < 800 and 0 < result["iwae_nll"] < 800

    png = str(tmp_path / "grid.png")
    run_cli("sample", f"--model_dir={model_dir}", "--num_samples=16", f"--output={png}")
    image = Image.open(png)
    assert image.size == (4 * 57 + 1, 4 * 57 + 1)  # 4x4 tiles of 28 px at scale 2 plus 1 px borders


def test_cli_errors_are_clear(tmp_path):
    model_dir = str(tmp_path / "run")
    out = run_cli("train", f"--model_dir={model_dir}", "--epochs=1", "--steps_per_epoch=1", "--batch_size=10")
    out = run_cli("train", f"--model_dir={model_dir}", "--preset=mnist", "--epochs=1", check=False)
    assert out.returncode != 0 and "holds a model with a different configuration" in out.stderr
    out = run_cli("train", f"--model_dir={tmp_path / 'other'}", "--dataset=binarized_mnist", f"--data_dir={tmp_path}", check=False)
    assert out.returncode != 0 and "is not prepared under" in out.stderr
    assert not os.path.exists(tmp_path / "other")  # nothing written when the data is missing
    out = run_cli("explode", check=False)
    assert out.returncode != 0 and "Expected exactly one command" in out.stderr


def test_export_commands(tmp_path):
    model_dir = str(tmp_path / "run")
    run_cli("train", f"--model_dir={model_dir}", "--epochs=1", "--steps_per_epoch=1", "--batch_size=10")
    serving = str(tmp_path / "serving")
    out = _last_json(run_cli("export_saved_model", f"--model_dir={model_dir}", f"--export_dir={serving}").stdout)
    assert out["saved_model"] == os.path.join(serving, "draw", "1")
    assert os.path.exists(os.path.join(serving, "draw", "1", "saved_model.pb"))
    assert "reconstruct" in out["signatures"] and "serving_default" in out["signatures"]

    tflite = str(tmp_path / "tflite")
    proc = run_cli(
        "export_tflite", f"--model_dir={model_dir}", f"--output={tflite}", "--quantization=float32,int8",
        "--export_batch_size=2", "--preset=quick",
    )
    reports = json.loads(proc.stdout[proc.stdout.index("[\n  {"):])
    assert [os.path.basename(r["path"]) for r in reports] == ["draw_float32.tflite", "draw_int8.tflite"]
    assert reports[0]["outputs"]["images"] == [2, 28, 28, 1] and reports[0]["max_abs_diff_images"] < 1e-5
    assert reports[1]["bytes"] < reports[0]["bytes"] == os.path.getsize(reports[0]["path"])

    # Bad input: nothing is written or replaced.
    before = {name: os.path.getmtime(os.path.join(tflite, name)) for name in os.listdir(tflite)}
    for args, message in [
        # (an existing version, batch 0 and the like are refused by the Python functions: test_export_*.py)
        (["export_saved_model", "--preset=mnist"], "is not the preset 'mnist'"),
        (["export_tflite", f"--output={tflite}"], "pass --overwrite"),
        (["export_tflite", f"--output={os.path.join(tflite, 'draw_int8.tflite')}"], "must be a directory"),
    ]:
        extra = [f"--export_dir={serving}"] if args[0] == "export_saved_model" else []
        proc = run_cli(*args, f"--model_dir={model_dir}", *extra, check=False)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr[-2000:])
    assert sorted(os.listdir(os.path.join(serving, "draw"))) == ["1"]
    assert {name: os.path.getmtime(os.path.join(tflite, name)) for name in os.listdir(tflite)} == before
