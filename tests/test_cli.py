"""The command line, run as a user runs it: help, usage errors, train (and resume), evaluate, sample,
the exporters; bad input ends with one line on stderr and exit status 2."""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A model small enough for tests that do not need a real preset (the default preset is `quick`).
TINY = "--set=time_steps=2,encoder_size=8,decoder_size=8,z_size=2"
COMMANDS = ["train", "evaluate", "sample", "export_saved_model", "export_tflite", "train_classifier"]


def run_cli(*args, check=True, cwd=REPO):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "draw_tf", *args], capture_output=True, text=True, env=env, timeout=600, cwd=cwd
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def _last_json(text):
    return json.loads(text[text.rindex("{\n"):])


def assert_one_line_error(proc, command, message):
    """Bad input: exit status 2 and one line `draw-tf COMMAND: error: ...` on stderr, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    prog = f"draw-tf {command}" if command else "draw-tf"
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert message in lines[0], (message, lines[0])


def _tensorflow_version():
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            return tuple(int(part) for part in importlib.metadata.version(name).split(".")[:2])
        except importlib.metadata.PackageNotFoundError:
            pass
    return (0, 0)


def assert_no_log_noise(proc, training=False):
    """No TensorFlow or LiteRT INFO/WARNING lines, no absl INFO lines, no absl help hints.
    (Training with TensorFlow older than 2.21: XLA logs its start at the first compile, which the
    command line does not filter, see .ci/test_tf_range.)"""
    text = proc.stdout + proc.stderr
    if not (training and _tensorflow_version() < (2, 21)):
        assert not re.search(r"^([IW]\d{4} |INFO: )", text, re.M), text[-3000:]
        assert "absl::InitializeLog" not in text, text[-3000:]
    for noise in ("Sharding callback", "Try --helpfull", "Traceback"):
        assert noise not in text, (noise, text[-3000:])


def test_log_noise_lines():
    from draw_tf.cli import _log_noise

    for line in [
        "I0000 00:00:1796150093.181108   14777 port.cc:153] oneDNN custom operations are on. You may see ...",
        "W0000 00:00:1796151904.178343    2252 tf_tfl_flatbuffer_helpers.cc:365] Ignored output_format.",
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "2026-12-01 19:02:18.711728: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:467] Unable to "
        "register cuFFT factory: Attempting to register factory for plugin cuFFT when one has already been registered",
        "E0000 00:00:1796151738.769686   31800 cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting to "
        "register factory for plugin cuDNN when one has already been registered",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    ]:
        assert _log_noise(line + "\n"), line
    for line in [
        "E0000 00:00:1796150105.264107   14777 executor.cc:52] something failed",
        "F0000 00:00:1796150105.264107   14777 op_kernel.cc:9] Check failed: x == y",
        "Traceback (most recent call last):",
        "/usr/lib/python3/site-packages/keras/src/a.py:74: UserWarning: something",
    ]:
        assert not _log_noise(line + "\n"), line
    no_gpu = "E0000 00:00:1796150105.264107   14777 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"
    assert _log_noise(no_gpu) == (not os.path.exists("/proc/driver/nvidia/version"))  # kept where a driver is


# -- without TensorFlow ---------------------------------------------------------------------------


def _best_of_3(*args):
    best, proc = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        proc = run_cli(*args)
        best = min(best, time.perf_counter() - start)
    return best, proc


def _assert_at_once(seconds, what):
    """Under a second; on a machine so busy that Python alone takes long to start, within half a
    second of a bare `python -c pass` (best of 3)."""
    if seconds < 1.0:
        return
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    bare = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, timeout=60)
        bare = min(bare, time.perf_counter() - start)
    assert seconds < bare + 0.5, f"{what} took {seconds:.2f} s, python -c pass {bare:.2f} s"


def test_help_lists_the_commands_at_once():
    seconds, proc = _best_of_3("--help")
    _assert_at_once(seconds, "draw-tf --help")
    for command in COMMANDS:  # one line each: name and description
        assert re.search(rf"^\s+{command}\s+\S", proc.stdout, re.M) or re.search(
            rf"^\s+{command}\n\s+\S", proc.stdout, re.M
        ), (command, proc.stdout)
    assert "draw-tf COMMAND --help" in proc.stdout
    assert_no_log_noise(proc)
    assert proc.stderr == ""


def test_command_help_lists_its_flags_only():
    seconds, proc = _best_of_3("train", "--help")
    _assert_at_once(seconds, "draw-tf train --help")
    flags = set(re.findall(r"^  (--\w+)", proc.stdout, re.M))
    assert {"--preset", "--set", "--dataset", "--model_dir", "--epochs", "--batch_size", "--learning_rate",
            "--lr_decay", "--jit_compile", "--jit_loss", "--strategy", "--seed", "--save_every_steps"} <= flags
    for other in ("--quantization", "--export_dir", "--num_samples", "--pretrained", "--iwae_samples", "--classifier"):
        assert other not in proc.stdout
    assert "--jit_compile, --nojit_compile" in proc.stdout and "(default: 100)" in proc.stdout
    assert_no_log_noise(proc)

    out = run_cli("sample", "--help").stdout
    assert set(re.findall(r"^  (--\w+)", out, re.M)) == {"--model_dir", "--pretrained", "--num_samples", "--output",
                                                          "--seed", "--gif"}


def test_import_draw_tf_and_the_cli_without_tensorflow():
    script = (
        "import sys, io, contextlib\n"
        "import draw_tf, draw_tf.cli\n"
        "assert draw_tf.__version__ and callable(draw_tf.get_preset) and draw_tf.get_preset('quick').time_steps == 16\n"
        "import draw_tf.pretrained_models\n"
        "assert draw_tf.pretrained is draw_tf.pretrained_models.pretrained\n"
        "for argv in (['--help'], ['train', '--help'], ['train', '--batch_size=0'], ['sample', '--pretrained=nope'],\n"
        "             ['train', '--set=time_step=3'], ['export_tflite', '--quantization=int4', '--model_dir=.']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            draw_tf.cli.main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')))\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_package_names_load_on_first_use():
    import draw_tf
    from draw_tf import Draw, model, pretrained_models

    assert draw_tf.Draw is Draw is model.Draw
    assert draw_tf.pretrained is pretrained_models.pretrained and callable(draw_tf.pretrained)
    assert set(draw_tf.__all__) <= set(dir(draw_tf))
    namespace = {}
    exec("from draw_tf import *", namespace)
    assert set(draw_tf.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        draw_tf.nope  # noqa: B018


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--batch_size=0"], "argument --batch_size: must be a positive integer, received 0"),
        (["train", "--learning_rate=-1"], "argument --learning_rate: must be a positive number, received -1"),
        (["train", "--lr_decay=1.5"], "argument --lr_decay: must be a number in (0, 1], received 1.5"),
        (["train", "--epochs=two"], "argument --epochs: expected an integer, received 'two'"),
        (["train", "--epoch=3"], "unrecognized arguments: --epoch=3"),  # no abbreviations, as absl
        (["train", "--jit_loss=maybe"], "expected true or false, received 'maybe'"),
        (["train", "--strategy=gpu"], "argument --strategy: invalid choice: 'gpu'"),
        (["train", "--set=time_step=3"], "Unknown DrawConfig fields ['time_step']"),
        (["train", "--set=time_steps"], "--set takes name=value pairs separated by commas, received 'time_steps'"),
        (["sample", "--set=time_steps=3"], "unrecognized arguments: --set=time_steps=3"),  # not a flag of sample
        (["sample", "--model_dir=/nonexistent"], "No model directory or .keras file at '/nonexistent'"),
        (["export_tflite"], "No model at 'runs/quickstart' (the default --model_dir): train one there with"),
        (["evaluate", "--pretrained=nope"], "unknown pretrained model 'nope'; available:"),
        (["sample", "--pretrained=nope", "--model_dir=x"], "not allowed with argument"),
        (["export_tflite", "--model_dir=.", "--quantization=float32,int4"], "--quantization takes a list out of"),
        (["export_tflite", "--model_dir=.", "--set=z_size=3"], "--set needs --preset"),
        (["export_saved_model", "--model_dir=.", "--preset=mnst"], "Unknown preset 'mnst'"),
        (["train", "--lr_halving=0.3"], "argument --lr_halving: must be GAIN,EPOCHS (nats > 0, whole epochs >= 1), e.g. 0.3,15, or off; received '0.3'."),
        (["train_classifier", "--gradient_clip=global"], "argument --gradient_clip: must be tensor:C, global:C (C > 0) or off, received 'global'."),
        (["explode"], "invalid choice: 'explode'"),
        ([], "expected a command: train, evaluate, sample"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, message, tmp_path):
    proc = run_cli(*args, check=False, cwd=str(tmp_path))  # an empty directory: no runs/quickstart
    command = args[0] if args and args[0] in COMMANDS else ""
    assert_one_line_error(proc, command, message)
    assert proc.stdout == ""


def test_absl_style_flags_still_parse():
    from draw_tf.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--model_dir=runs/x", "--set=time_steps=8,encoder_size=64", "--nojit_loss",
                              "--jit_compile", "--learning_rate=3e-3", "--steps_per_epoch", "5"])
    assert (args.model_dir, args.set, args.jit_loss, args.jit_compile) == ("runs/x", ["time_steps=8", "encoder_size=64"],
                                                                           False, True)
    assert (args.learning_rate, args.steps_per_epoch, args.epochs, args.preset) == (3e-3, 5, 10, "quick")
    args = parser.parse_args(["train", "--jit_loss=false", "--jit_compile=true"])
    assert (args.jit_loss, args.jit_compile) == (False, True)
    args = parser.parse_args(["export_tflite", "--quantization=float32,int8", "--device_noise", "--nooverwrite"])
    assert (args.quantization, args.device_noise, args.overwrite) == (["float32", "int8"], True, False)
    assert (args.model_dir, args.pretrained, args.export_batch_size) == (None, None, 1)
    args = parser.parse_args(["train_classifier"])
    assert (args.preset, args.classifier, args.model_dir, args.batch_size) == ("cluttered_mnist", "draw",
                                                                              "runs/cluttered", 100)
    assert parser.parse_args(["train"]).model_dir == "runs/quickstart"  # the generator's stays


def test_the_readme_command_lines_parse():
    """Every `draw-tf` line of the README's "Command line" block parses (flags and values as written)."""
    import shlex

    from draw_tf.cli import build_parser

    with open(os.path.join(REPO, "README.md")) as f:
        section = f.read().split("## Command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("draw-tf ")]
    assert len(lines) >= 6, block
    parser = build_parser()
    for line in lines:
        args = parser.parse_args(shlex.split(line)[1:])  # a bad flag or value exits
        assert args.command == shlex.split(line)[1]
    recipe = parser.parse_args(shlex.split(lines[0])[1:])
    assert (recipe.preset, recipe.weight_average, recipe.lr_halving) == ("mnist", 0.999, (0.3, 15))
    # docs/training.md's recipe is the same training
    with open(os.path.join(REPO, "docs", "training.md")) as f:
        section = f.read().split("## The recipe", 1)[1]
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    documented = parser.parse_args(shlex.split(command)[1:])
    same = ("command", "preset", "dataset", "epochs", "learning_rate", "lr_decay", "lr_halving", "weight_average")
    assert {k: getattr(documented, k) for k in same} == {k: getattr(recipe, k) for k in same}


def test_cli_choices_match_the_library():
    from draw_tf import cli, cluttered, distribute, gradient_clip, training
    from draw_tf.export import QUANTIZATIONS

    assert cli.QUANTIZATIONS == QUANTIZATIONS
    assert cli.STRATEGIES == distribute.STRATEGIES
    assert cli.CLASSIFIERS == cluttered.KINDS
    assert cli.CANVAS_INITS == training.CANVAS_INITS
    assert cli.GRADIENT_CLIP_DEFAULT == gradient_clip.DEFAULT


def test_only_draw_tf_input_errors_lose_their_traceback(monkeypatch, capsys):
    from draw_tf import cli, config

    monkeypatch.setitem(cli._RUN, "sample", lambda args: config.get_preset("mnst"))  # raised by draw_tf
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sample"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "draw-tf sample: error: Unknown preset 'mnst'; expected one of " f"{sorted(config.PRESETS)}.\n"
    )
    monkeypatch.setitem(cli._RUN, "sample", lambda args: int("not a number"))  # a ValueError from elsewhere
    with pytest.raises(ValueError, match="invalid literal"):
        cli.main(["sample"])
    monkeypatch.setitem(cli._RUN, "sample", lambda args: 1 / 0)  # unexpected: the traceback stays
    with pytest.raises(ZeroDivisionError):
        cli.main(["sample"])
    capsys.readouterr()

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._RUN, "train", interrupted)  # Ctrl-C: a line saying how to resume, status 130
    assert cli.main(["train"]) == 130
    assert capsys.readouterr().err == "\ndraw-tf train: interrupted (the same command resumes from the last checkpoint)\n"


# -- with TensorFlow: tiny models -----------------------------------------------------------------


@pytest.mark.slow
def test_train_resume_evaluate_sample(tmp_path):
    from PIL import Image

    model_dir = str(tmp_path / "run")
    train = ("train", f"--model_dir={model_dir}", TINY, "--steps_per_epoch=2", "--batch_size=20")
    out = run_cli(*train, "--epochs=1")
    assert_no_log_noise(out, training=True)
    assert re.search(r"^2/2 - .*loss: .*val_loss: ", out.stdout, re.M)  # one line per epoch when not on a terminal
    summary = _last_json(out.stdout)
    assert np.isfinite(summary["loss"]) and np.isfinite(summary["val_loss"])
    assert os.path.exists(os.path.join(model_dir, "samples", "epoch_0001.png"))
    assert os.path.exists(os.path.join(model_dir, "model.keras"))

    out = run_cli(*train, "--epochs=2")
    assert "Resuming from" in out.stdout and "(epoch 1, step 0)" in out.stdout
    assert os.path.exists(os.path.join(model_dir, "samples", "epoch_0002.png"))
    assert not os.path.exists(os.path.join(model_dir, "samples", "epoch_0003.png"))

    out = run_cli("evaluate", f"--model_dir={model_dir}", "--iwae_samples=3", "--max_batches=2", "--batch_size=50")
    result = _last_json(out.stdout)
    assert result["num_images"] == 100 and result["split"] == "validation" and result["model_dir"] == model_dir
    assert result["iwae_num_samples"] == 3 and 0 < result["negative_elbo"] < 800 and 0 < result["iwae_nll"] < 800

    png = str(tmp_path / "grid.png")
    run_cli("sample", f"--model_dir={model_dir}", "--num_samples=16", f"--output={png}")
    image = Image.open(png)
    assert image.size == (4 * 57 + 1, 4 * 57 + 1)  # 4x4 tiles of 28 px at scale 2 plus 1 px borders


@pytest.mark.slow
def test_cli_errors_are_clear(tmp_path):
    model_dir = str(tmp_path / "run")
    run_cli("train", f"--model_dir={model_dir}", TINY, "--epochs=1", "--steps_per_epoch=1", "--batch_size=10")
    out = run_cli("train", f"--model_dir={model_dir}", "--preset=mnist", "--epochs=1", check=False)
    assert_one_line_error(out, "train", "holds a model with a different configuration")
    out = run_cli("train", f"--model_dir={tmp_path / 'other'}", "--dataset=binarized_mnist", f"--data_dir={tmp_path}", check=False)
    assert_one_line_error(out, "train", "is not prepared under")
    assert not os.path.exists(tmp_path / "other")  # nothing written when the data is missing
    out = run_cli("evaluate", f"--model_dir={model_dir}", "--dataset=nope.npz", check=False)
    assert_one_line_error(out, "evaluate", "Dataset file 'nope.npz' does not exist")


@pytest.mark.slow
def test_export_commands(tmp_path):
    model_dir = str(tmp_path / "run")
    small = "--set=time_steps=2,encoder_size=32,decoder_size=32,z_size=4"  # LSTM kernels large enough for int8
    run_cli("train", f"--model_dir={model_dir}", small, "--epochs=1", "--steps_per_epoch=1", "--batch_size=10")
    serving = str(tmp_path / "serving")
    out = _last_json(run_cli("export_saved_model", f"--model_dir={model_dir}", f"--export_dir={serving}").stdout)
    assert out["saved_model"] == os.path.join(serving, "draw", "1")
    assert os.path.exists(os.path.join(serving, "draw", "1", "saved_model.pb"))
    assert "reconstruct" in out["signatures"] and "serving_default" in out["signatures"]

    tflite = str(tmp_path / "tflite")
    proc = run_cli(
        "export_tflite", f"--model_dir={model_dir}", f"--output={tflite}", "--quantization=float32,int8",
        "--export_batch_size=2", "--preset=quick", small,  # the preset check passes for the preset it was trained with
    )
    assert_no_log_noise(proc)
    reports = json.loads(proc.stdout[proc.stdout.index("[\n  {"):])
    assert [os.path.basename(r["path"]) for r in reports] == ["draw_float32.tflite", "draw_int8.tflite"]
    assert reports[0]["outputs"]["images"] == [2, 28, 28, 1] and reports[0]["max_abs_diff_images"] < 1e-5
    assert reports[1]["bytes"] < reports[0]["bytes"] == os.path.getsize(reports[0]["path"])

    # Bad input: nothing is written or replaced.
    before = {name: os.path.getmtime(os.path.join(tflite, name)) for name in os.listdir(tflite)}
    for args, message in [
        # (batch 0 and the like are refused by the Python functions: test_export_*.py)
        (["export_saved_model", "--preset=mnist"], "is not the preset 'mnist'"),
        (["export_saved_model", "--version=1"], "already exists; versions are never overwritten"),
        (["export_tflite", f"--output={tflite}"], "pass --overwrite"),
        (["export_tflite", f"--output={os.path.join(tflite, 'draw_int8.tflite')}"], "must be a directory"),
    ]:
        extra = [f"--export_dir={serving}"] if args[0] == "export_saved_model" else []
        proc = run_cli(*args, f"--model_dir={model_dir}", *extra, check=False)
        assert_one_line_error(proc, args[0], message)
    assert sorted(os.listdir(os.path.join(serving, "draw"))) == ["1"]
    assert {name: os.path.getmtime(os.path.join(tflite, name)) for name in os.listdir(tflite)} == before


@pytest.mark.slow
def test_pretrained_models_from_the_command_line(tmp_path):
    """--pretrained=NAME instead of --model_dir; the outputs default to the current directory."""
    from draw_tf import pretrained_models

    names = pretrained_models.available("generator")
    if not names:
        pytest.skip("no pretrained DRAW generator ships with this checkout yet")
    from PIL import Image

    name = names[0]
    classifiers = pretrained_models.available("classifier")
    if classifiers:  # a classifier cannot sample: --pretrained lists the generators only
        proc = run_cli("sample", f"--pretrained={classifiers[0]}", cwd=str(tmp_path), check=False)
        assert_one_line_error(proc, "sample", f"unknown pretrained model {classifiers[0]!r}; available: {', '.join(names)}")
    out = run_cli("sample", f"--pretrained={name}", "--num_samples=4", "--gif=drawing.gif", cwd=str(tmp_path)).stdout
    assert out.split() == ["samples.png", "drawing.gif"]
    assert Image.open(tmp_path / "samples.png").size[0] > 0
    gif = Image.open(tmp_path / "drawing.gif")  # the 4 samples drawn over the model's T steps
    assert gif.n_frames == pretrained_models.pretrained(name).config.time_steps and gif.size[0] > gif.size[1]
    out = _last_json(run_cli("export_saved_model", f"--pretrained={name}", cwd=str(tmp_path)).stdout)
    assert out["saved_model"] == os.path.join("serving", "draw", "1")
    assert os.path.exists(tmp_path / "serving" / "draw" / "1" / "saved_model.pb")
    result = _last_json(run_cli("evaluate", f"--pretrained={name}", "--max_batches=1", "--batch_size=10",
                                cwd=str(tmp_path)).stdout)
    assert result["pretrained"] == name and result["num_images"] == 10 and np.isfinite(result["negative_elbo"])
    proc = run_cli("export_tflite", f"--pretrained={name}", "--preset=cifar10", cwd=str(tmp_path), check=False)
    assert_one_line_error(proc, "export_tflite", f"pretrained model {name!r} holds a model that is not the preset")
    assert not os.path.exists(tmp_path / "tflite")


@pytest.mark.slow
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
    assert (stored["image_height"], stored["image_width"], stored["time_steps"], stored["read_size"]) == (60, 60, 3, 12)
    # what `draw-tf sample` and `draw-tf evaluate --dataset=two_digit_mnist` run, in process
    from draw_tf import data, training

    model = training.load_model(model_dir)
    png = training.sample_grid(model, str(tmp_path / "grid.png"), num_samples=4)
    assert Image.open(png).size == (2 * 121 + 1, 2 * 121 + 1)  # 2x2 tiles of 60 px at scale 2
    held_out = data.make_dataset("two_digit_mnist", "validation", 50, data_dir, shuffle=False, image_shape=model.config.image_shape)
    result = training.evaluate_nll(model, held_out)
    assert result["num_images"] == 6 and np.isfinite(result["negative_elbo"])  # one scene per held-out digit


@pytest.mark.slow
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
