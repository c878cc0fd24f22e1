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
    out = run_cli("train", "--set=time_step=3", f"--model_dir={tmp_path / 's'}", check=False)
    assert out.returncode != 0 and "Unknown DrawConfig fields ['time_step']" in out.stderr
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


def test_two_digit_mnist_train_sample_evaluate(tmp_path):
    """The mnist_two_digit preset on 60x60 two-digit scenes of MNIST IDX files (synthetic digits here,
    ../shared/data/mnist for a real run), made smaller with --set."""
    from PIL import Image
    from test_mnist_scenes import write_mnist_dir

    data_dir = str(tmp_path / "mnist")
    write_mnist_dir(data_dir, n=30)
    model_dir = str(tmp_path / "two")
    small = "--set=time_steps=3,encoder_size=16,decoder_size=16,z_size=4"
    summary = _last_json(run_cli(
        "train", "--preset=mnist_two_digit", small, "--epochs=1", "--steps_per_epoch=2", f"--model_dir={model_dir}",
        "--dataset=two_digit_mnist", f"--data_dir={data_dir}", "--batch_size=50",
    ).stdout)
    assert np.isfinite(summary["val_loss"])
    with open(os.path.join(model_dir, "config.json")) as f:
        stored = json.load(f)["model"]
    assert (stored["image_height"], stored["image_width"], stored["time_steps"], stored["read_size"]) == (60, 60, 3, 2)
    # what `draw-tf sample` and `draw-tf evaluate --dataset=two_digit_mnist` run, in process
    from draw_tf import data, training

    model = training.load_model(model_dir)
    png = training.sample_grid(model, str(tmp_path / "grid.png"), num_samples=4)
    assert Image.open(png).size == (2 * 121 + 1, 2 * 121 + 1)  # 2x2 tiles of 60 px at scale 2
    held_out = data.make_dataset("two_digit_mnist", "validation", 50, data_dir, shuffle=False, image_shape=model.config.image_shape)
    result = training.evaluate_nll(model, held_out)
    assert result["num_images"] == 6 and np.isfinite(result["negative_elbo"])  # one scene per held-out digit


def test_colour_preset_on_your_own_npz_images(tmp_path):
    """cifar10_logistic (colour, discretized logistic) from the CLI on 8-bit images in an .npz file:
    train, evaluate in bits per dimension; then a colour sample grid."""
    from PIL import Image

    rng = np.random.default_rng(0)
    images = np.zeros((80, 32, 32, 3), np.uint8)  # coloured rectangles on grey
    images[:] = 128
    for img in images:
        top, left = rng.integers(0, 20, size=2)
        img[top : top + 12, left : left + 12] = rng.integers(0, 256, size=3)
    path = str(tmp_path / "rects.npz")
    np.savez(path, train=images[:64], validation=images[64:])
    model_dir = str(tmp_path / "colour")
    common = (f"--model_dir={model_dir}", f"--dataset={path}", "--batch_size=16")
    small = "--set=time_steps=2,encoder_size=16,decoder_size=16,z_size=4"
    run_cli("train", "--preset=cifar10_logistic", small, "--epochs=1", "--steps_per_epoch=4", *common)
    result = _last_json(run_cli("evaluate", *common).stdout)
    assert result["num_images"] == 16
    np.testing.assert_allclose(result["bits_per_dim"], result["negative_elbo"] / (32 * 32 * 3 * np.log(2)), rtol=1e-6)
    assert 0 < result["bits_per_dim"] < 12  # a broad logistic over 256 values costs at most ~8 bits; the KL is small
    from draw_tf import training  # the colour sample grid, in process

    png = training.sample_grid(training.load_model(model_dir), str(tmp_path / "grid.png"), num_samples=4)
    assert Image.open(png).mode == "RGB" and Image.open(png).size == (2 * 65 + 1, 2 * 65 + 1)
