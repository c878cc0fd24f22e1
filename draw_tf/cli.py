"""Command line: `draw-tf COMMAND [--flags]` (also `python -m draw_tf ...`); `draw-tf --help` lists
the commands, `draw-tf COMMAND --help` the flags of one.

The arguments are read and checked before TensorFlow is imported, so `--help` and usage errors
answer at once. Bad input (usage errors, missing files or data, invalid values) ends with one line
`draw-tf COMMAND: error: ...` on stderr and exit status 2; anything unexpected keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile

PROG = "draw-tf"
DEFAULT_MODEL_DIR = "runs/quickstart"
DEFAULT_CLASSIFIER_DIR = "runs/cluttered"
COMMANDS = {
    "train": "Train a DRAW model on images, or resume the training in --model_dir.",
    "evaluate": "Negative ELBO (and the importance-weighted bound) of a trained model on held-out images.",
    "sample": "Write a PNG grid of images drawn by a trained model.",
    "export_saved_model": "Export a trained model as a SavedModel for TensorFlow Serving.",
    "export_tflite": "Export a trained model's sampler as TFLite (LiteRT) files: float32, float16, int8.",
    "train_classifier": "Train the DRAW classifier (or a convnet baseline) on cluttered MNIST scenes.",
}
# Checked here so that a typo fails before TensorFlow loads; tests/test_cli.py checks they match
# draw_tf.export.QUANTIZATIONS, draw_tf.distribute.STRATEGIES and draw_tf.cluttered.KINDS.
QUANTIZATIONS = ("float32", "float16", "int8")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
GRADIENT_CLIP_DEFAULT = "tensor:1"  # draw_tf.gradient_clip.DEFAULT
CANVAS_INITS = ("data", "zeros")  # draw_tf.training.CANVAS_INITS
CLASSIFIERS = ("draw", "baseline")
EXPECTED_ERRORS = (ValueError, FileNotFoundError, FileExistsError)  # raised by draw_tf for bad input


class UsageError(Exception):
    """Bad command-line input found after parsing (ends with one line on stderr and exit status 2)."""


# -- argument types -------------------------------------------------------------------------------


def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, received {text!r}") from None
        if value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise argparse.ArgumentTypeError(f"must be {what}, received {value}")
        return value

    return parse


def _float_in(low, high=None):
    """A float in (low, high] (or (low, inf) without high)."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
        if not math.isfinite(value) or value <= low or (high is not None and value > high):
            what = f"a number in ({low:g}, {high:g}]" if high is not None else "a positive number"
            raise argparse.ArgumentTypeError(f"must be {what}, received {text}")
        return value

    return parse


def _gradient_clip(text):
    """tensor:C, global:C or off (`draw_tf.gradient_clip`)."""
    from draw_tf import gradient_clip  # plain Python

    try:
        gradient_clip.adam_arguments(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("gradient_clip ")) from None
    return text


def _momentum(text):
    """0 (off) or a number in (0, 1): a moving average's momentum."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not (value == 0.0 or 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a momentum in (0, 1), received {text}")
    return value


def _lr_halving(text):
    """The --lr_halving value: "off", or GAIN,EPOCHS (`draw_tf.plateau`) as a (gain, epochs) tuple."""
    from draw_tf import plateau  # plain Python

    try:
        rule = plateau.check_rule(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("lr_halving ")) from None
    return "off" if rule is None else rule


def _list(text):
    """A comma-separated list, as absl's DEFINE_list read it: items stripped, "" is the empty list."""
    return [item.strip() for item in text.split(",")] if text.strip() else []


_TRUE, _FALSE = ("true", "t", "1", "yes", "y"), ("false", "f", "0", "no", "n")


class _AbslBool(argparse.Action):
    """An absl-style boolean: `--x`, `--nox`, or `--x=true|false`."""

    def __init__(self, option_strings, dest, default=False, help=None):
        name = option_strings[0][2:]
        super().__init__([f"--{name}", f"--no{name}"], dest, nargs="?", default=default, help=help, metavar="BOOL")

    def __call__(self, parser, namespace, values, option_string=None):
        negated = option_string.startswith("--no")
        if values is None:
            value = True
        elif values.lower() in _TRUE:
            value = True
        elif values.lower() in _FALSE:
            value = False
        else:
            raise argparse.ArgumentError(self, f"expected true or false, received {values!r}")
        setattr(namespace, self.dest, value != negated)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows `--x, --nox` for booleans and each flag's default when it has one."""

    def _format_action_invocation(self, action):
        if isinstance(action, _AbslBool):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)

    def _get_help_string(self, action):
        text = action.help or ""
        takes_value = action.option_strings and action.nargs != 0  # not --help, --version
        if takes_value and action.default not in (None, argparse.SUPPRESS, [], "") and "default" not in text:
            default = ",".join(action.default) if isinstance(action.default, (list, tuple)) else action.default
            text += f" (default: {default})"
        return text.replace("%", "%%")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs.setdefault("allow_abbrev", False)  # as absl: --epoch is not --epochs
        super().__init__(*args, **kwargs)

    def error(self, message):
        _fail(self.prog, f"{message} (see {self.prog} --help)")


def _fail(prog, message):
    message = re.sub(r"\s*\n\s*", " ", str(message)).strip()
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.exit(2)


# -- the flags ------------------------------------------------------------------------------------


def _add_flags(p, *names):
    """Adds the flags `names` (see FLAGS) to the command parser `p`."""
    for name in names:
        p.add_argument(f"--{name}", **FLAGS[name])


FLAGS = {
    "preset": dict(
        default="quick", metavar="NAME",
        help="Model preset (draw_tf.PRESETS): quick, mnist, mnist_no_attention, mnist_two_digit, svhn, cifar10, "
        "cifar10_logistic.",
    ),
    "set": dict(
        type=_list, default=[], metavar="NAME=VALUE,...",
        help="Preset fields to change, e.g. --set=time_steps=8,encoder_size=128 (a smaller model for a quick run; "
        "the model_dir's config.json records the result).",
    ),
    "dataset": dict(
        default="embedded", metavar="NAME_OR_NPZ",
        help="embedded (ships with the package), binarized_mnist, mnist (dynamic binarization), two_digit_mnist "
        "(60x60, from MNIST digits), svhn_cropped or cifar10 (tfds, colour), or a path to an .npz file of "
        "uint8 images [n, H, W, C] per split (arrays train, validation or test).",
    ),
    "data_dir": dict(
        metavar="DIR",
        help="tensorflow-datasets data_dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets); for two_digit_mnist "
        "also a directory of the MNIST IDX files (t10k-images-idx3-ubyte.gz, ...).",
    ),
    "model_dir": dict(default=DEFAULT_MODEL_DIR, metavar="DIR", help="Directory for config, checkpoints, logs and samples."),
    "epochs": dict(type=_int_at_least(1), default=10, metavar="N", help="Total epochs to train (training resumes from the last checkpoint)."),
    "steps_per_epoch": dict(type=_int_at_least(1), metavar="N", help="Batches per epoch (default: the whole training split)."),
    "batch_size": dict(type=_int_at_least(1), default=100, metavar="N", help="Batch size."),
    "save_every_steps": dict(
        type=_int_at_least(0), default=100, metavar="N", help="Also checkpoint every this many steps (0: after each epoch only).",
    ),
    "learning_rate": dict(type=_float_in(0.0), default=1e-3, metavar="RATE", help="Adam learning rate."),
    "canvas_init": dict(
        choices=CANVAS_INITS, default="data",
        help="Where a new run's learned initial canvas c_0 starts: data (the logit of the training images' mean) "
        "or zeros (grey). A resumed run keeps its own.",
    ),
    "weight_average": dict(
        type=_momentum, metavar="M",
        help="0 (off), or the momentum of a moving average of the weights (e.g. 0.999: about the last 1,000 steps) "
        "that validation, the best-epoch weights, the samples and model.keras use; the log also has the raw weights' "
        "validation, on the same noise. Default: as the model_dir's run had it (off for a new run).",
    ),
    "lr_decay": dict(
        type=_float_in(0.0, 1.0), default=1.0, metavar="FACTOR",
        help="Learning-rate factor per epoch (1.0: constant; 0.93 with 3e-3 for mnist).",
    ),
    "lr_halving": dict(
        type=_lr_halving, metavar="GAIN,EPOCHS",
        help="Halve the (constant) learning rate after an epoch whose validation bound is less than GAIN nats below "
        "that of EPOCHS epochs earlier at the same rate (the shipped mnist model's rule: 0.3,15), or off. Default: as "
        "the model_dir's run had it (off for a new run). With the rule a resumed run keeps the rate its checkpoint holds "
        "(--learning_rate must be the one it was last started with); with off --learning_rate replaces it, as for any "
        "constant rate.",
    ),
    "jit_compile": dict(action=_AbslBool, default=False, help="Keras compile(jit_compile=True): XLA on the whole train step."),
    "jit_loss": dict(action=_AbslBool, default=True, help="XLA on the T-step forward and backward pass only (Draw(jit_loss=...))."),
    "strategy": dict(
        choices=STRATEGIES, default="auto",
        help="tf.distribute strategy (auto: a TPU or the GPUs when present, else one device; multi_worker: the "
        "hosts of $TF_CONFIG). --batch_size is the global batch.",
    ),
    "seed": dict(type=int, default=0, metavar="N", help="Random seed (initialisation, shuffling, noise)."),
}


def _add_model_source(p):
    """--model_dir or --pretrained (not both) for the commands that read a trained model."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--model_dir", metavar="DIR",
        help=f"A draw-tf train model_dir or a .keras file (default: {DEFAULT_MODEL_DIR}, unless --pretrained).",
    )
    group.add_argument(
        "--pretrained", metavar="NAME",
        help="A pretrained DRAW model shipped with draw-tf (draw_tf.pretrained_models.available('generator')) instead of --model_dir; "
        "outputs then default to the current directory.",
    )


def build_parser():
    parser = _Parser(
        prog=PROG,
        description="DRAW (Gregor et al. 2015): a recurrent attentive image generator in TensorFlow / Keras 3.",
        epilog=f"Run `{PROG} COMMAND --help` for the flags of a command. Quickstart:\n"
        f"  {PROG} train --model_dir={DEFAULT_MODEL_DIR} --epochs=10\n"
        f"  {PROG} sample --model_dir={DEFAULT_MODEL_DIR} --output=samples.png",
    )
    parser.add_argument("--version", action="store_true", dest="show_version", help="Print the draw-tf version and exit.")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    sub = {name: commands.add_parser(name, help=text, description=text) for name, text in COMMANDS.items()}

    p = sub["train"]
    _add_flags(p, "preset", "set", "dataset", "data_dir", "model_dir", "epochs", "steps_per_epoch", "batch_size",
               "learning_rate", "lr_decay", "lr_halving", "weight_average", "canvas_init", "save_every_steps", "jit_compile", "jit_loss", "strategy",
               "seed")

    p = sub["evaluate"]
    _add_model_source(p)
    _add_flags(p, "dataset", "data_dir", "batch_size")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="Seed of the posterior noise.")
    p.add_argument("--split", metavar="NAME", help="The split to evaluate (default: validation, or test for svhn_cropped and cifar10).")
    p.add_argument("--iwae_samples", type=_int_at_least(0), default=0, metavar="K",
                   help="K for the importance-weighted bound (0 skips it).")
    p.add_argument("--max_batches", type=_int_at_least(1), metavar="N", help="Stop after this many batches (default: the whole split).")
    p.add_argument("--output", metavar="PATH", help="Also write the result to this JSON file.")

    p = sub["sample"]
    _add_model_source(p)
    p.add_argument("--num_samples", type=_int_at_least(1), default=64, metavar="N", help="Number of images in the grid.")
    p.add_argument("--output", metavar="PATH",
                   help="PNG path (default: <model_dir>/samples/samples.png; samples.png with --pretrained).")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="Random seed of the samples.")
    p.add_argument("--gif", metavar="PATH",
                   help="Also write an animated GIF of the model drawing the first 8 samples step by step, with its windows.")

    p = sub["export_saved_model"]
    _add_model_source(p)
    p.add_argument("--export_dir", metavar="DIR",
                   help="TF Serving base directory (default: <model_dir>/export/serving; serving with --pretrained).")
    _add_export_flags(p)
    p.add_argument("--version", type=_int_at_least(1), metavar="N",
                   help="Version number (default: one above the highest existing).")

    p = sub["export_tflite"]
    _add_model_source(p)
    p.add_argument("--output", metavar="DIR",
                   help="Directory for <model_name>_<quantization>.tflite (default: <model_dir>/export/tflite; "
                   "tflite with --pretrained).")
    _add_export_flags(p)
    p.add_argument("--quantization", type=_list, default=list(QUANTIZATIONS), metavar="Q,...",
                   help=f"Variants to write, out of {', '.join(QUANTIZATIONS)}.")
    p.add_argument("--export_batch_size", type=_int_at_least(1), default=1, metavar="N", help="The sampler's fixed batch size.")
    p.add_argument("--time_steps", type=_int_at_least(1), metavar="T", help="Drawing steps T (default: the model's).")
    p.add_argument("--device_noise", action=_AbslBool, default=False,
                   help="Also write a sampler that draws its own noise (no input).")
    p.add_argument("--overwrite", action=_AbslBool, default=False, help="Replace existing .tflite files.")

    p = sub["train_classifier"]
    p.add_argument("--preset", default="cluttered_mnist", metavar="NAME",
                   help="Classifier preset (draw_tf.CLASSIFIER_PRESETS).")
    p.add_argument("--set", type=_list, default=[], metavar="NAME=VALUE,...",
                   help="Preset fields to change, e.g. --set=time_steps=2,lstm_size=32 (the model_dir's config.json "
                   "records the result).")
    p.add_argument("--classifier", choices=CLASSIFIERS, default="draw",
                   help="draw (read attention + LSTM) or baseline (a convnet on the whole image).")
    p.add_argument("--data_dir", metavar="DIR",
                   help="A directory of the MNIST IDX files (t10k-images-idx3-ubyte.gz, ...), or a tensorflow-datasets "
                   "data_dir holding mnist (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).")
    _add_flags(p, "model_dir", "epochs", "steps_per_epoch", "batch_size", "learning_rate", "lr_decay", "seed")
    p.add_argument("--init_weights", metavar="FILE_OR_NAME",
                   help="Start a new run from these weights (a .weights.h5 file, or a shipped classifier's name such as "
                   "cluttered_mnist) with a fresh Adam, instead of a random initialisation; a resumed run ignores it. With "
                   "--set=window_rate=R the same windows continue at the new rate (from the config.json beside the weights).")
    p.add_argument("--weight_average", type=_momentum, metavar="M",
                   help="0 (off), or the momentum of a moving average of the weights (kept by Adam) that validation, the "
                   "kept epoch and model.keras use; the log also has the trained weights' validation. Default: as the "
                   "model_dir's run has it (off for a new run); a run cannot change it.")
    p.add_argument("--gradient_clip", type=_gradient_clip, default=GRADIENT_CLIP_DEFAULT, metavar="tensor:C|global:C|off",
                   help="tensor:C clips each weight tensor's gradient to norm C on its own (Keras's clipnorm; default "
                   "tensor:1, what the shipped classifiers trained with), global:C all of them together (global_clipnorm).")
    p.set_defaults(model_dir=DEFAULT_CLASSIFIER_DIR)  # not the generator's runs/quickstart
    parser.subcommands = sub
    return parser


def _add_export_flags(p):
    p.add_argument("--preset", metavar="NAME",
                   help="Check that the model is this preset (with --set) before exporting (default: no check).")
    p.add_argument("--set", type=_list, default=[], metavar="NAME=VALUE,...",
                   help="With --preset: the preset fields the model was trained with, as train --set.")
    p.add_argument("--model_name", default="draw", metavar="NAME", help="The served model's name (directory, and TFLite file prefix).")


# -- the commands ---------------------------------------------------------------------------------


def _overrides(args):
    """--set=name=value,... as a dict; values parsed as JSON numbers/booleans where they are one."""
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set takes name=value pairs separated by commas, received {item!r}.")
        try:
            overrides[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name.strip()] = value
    return overrides


def _preset_config(args, get_preset=None, preset=None):
    """The config of `preset` (default --preset) from `get_preset` (default the DrawConfig presets)
    with --set applied; bad names or values are usage errors."""
    if get_preset is None:
        from draw_tf.config import get_preset  # plain Python: no TensorFlow yet
    preset = preset or args.preset
    try:
        return get_preset(preset, **_overrides(args))
    except (ValueError, TypeError) as e:
        raise UsageError(f"--preset={preset} --set={','.join(args.set)}: {e}") from e


# TensorFlow's C++ log lines, in absl's format (I0000 00:00:1712.345 123 port.cc:153] ...) and in
# the older TSL one (2025-01-02 03:04:05.678: E external/.../cuda_fft.cc:467] ...).
_LOG_LINE = re.compile(
    r"(?:(?P<absl>[IWEF])\d{4} \S+ +\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<tsl>[IWEF]) )"
    r"(?P<file>\S+):\d+\] (?P<message>.*)"
)
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_LITERT_INFO = "INFO: "  # the LiteRT interpreter's own INFO lines (INFO: Created TensorFlow Lite XNNPACK delegate...)
# Errors that TensorFlow's CUDA builds log while loading on any machine (a plugin registered twice).
_HARMLESS_ERROR = re.compile(r"Unable to register cu\w+ factory: Attempting to register factory for plugin")


def _log_noise(line):
    """Whether a line that TensorFlow or LiteRT writes to stderr is noise: INFO and WARNING lines
    (TensorFlow 2.21 writes some before absl::InitializeLog(), whatever TF_CPP_MIN_LOG_LEVEL says;
    older versions more), the harmless errors above, and the failed GPU probe on a machine without
    an NVIDIA driver (it means only "no GPU"; kept where a driver is installed)."""
    if line.startswith((_ABSL_BANNER, _LITERT_INFO)):
        return True
    match = _LOG_LINE.match(line)
    if match is None:
        return False
    if (match["absl"] or match["tsl"]) in "IW" or _HARMLESS_ERROR.match(match["message"]):
        return True
    no_gpu = match["file"].endswith("cuda_platform.cc") and match["message"].startswith("failed call to cuInit")
    return no_gpu and not os.path.exists("/proc/driver/nvidia/version")


@contextlib.contextmanager
def _without_log_noise():
    """Runs the block with stderr (the file descriptor, so C++ output too) going to a temporary file,
    then writes what it got to stderr without the noise lines. For the short steps only (loading
    TensorFlow, sampling, exporting): stderr shows nothing until the block ends."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr file descriptor: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _log_noise(line)))
            sys.stderr.flush()


def _load_tensorflow():
    """Imports TensorFlow with its INFO and WARNING logs off: C++ (TF_CPP_MIN_LOG_LEVEL, set in
    main, and the start-up lines) and Python (absl and the `tensorflow` logger at ERROR)."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    with _without_log_noise():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the GPU probe, before any device is configured
    tf.get_logger().setLevel("ERROR")


def _check_model_source(args):
    """--model_dir (default runs/quickstart) or --pretrained: checks that the one given exists."""
    if args.pretrained is not None:
        from draw_tf import pretrained_models  # plain Python until a model is loaded

        names = pretrained_models.available("generator")  # every command with --pretrained samples or encodes
        if args.pretrained not in names:
            raise UsageError(
                f"--pretrained: unknown pretrained model {args.pretrained!r}; available: {', '.join(names) or 'none'}."
            )
        return
    if args.model_dir is None:
        args.model_dir = DEFAULT_MODEL_DIR
        if not os.path.exists(args.model_dir):
            raise UsageError(
                f"No model at {DEFAULT_MODEL_DIR!r} (the default --model_dir): train one there with `{PROG} train`, "
                "or pass --model_dir or --pretrained."
            )
    if not os.path.exists(args.model_dir):
        raise UsageError(f"No model directory or .keras file at {args.model_dir!r} (--model_dir).")


def _load(args, seed=None):
    if args.pretrained is not None:
        from draw_tf.pretrained_models import pretrained

        return pretrained(args.pretrained, seed=seed)
    from draw_tf import training

    return training.load_model(args.model_dir, seed=seed)


def _source(args):
    return {"pretrained": args.pretrained} if args.pretrained is not None else {"model_dir": args.model_dir}


def _train(args):
    config = _preset_config(args)
    _load_tensorflow()
    from draw_tf import training

    _, history = training.train(
        config,
        args.model_dir,
        dataset=args.dataset,
        data_dir=args.data_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_decay=args.lr_decay,
        jit_compile=args.jit_compile,
        jit_loss=args.jit_loss,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
        verbose=1 if sys.stdout.isatty() else 2,  # a progress bar on a terminal, a line per epoch in logs
        strategy=args.strategy,
        save_every_steps=args.save_every_steps or None,
        canvas_init=args.canvas_init,
        weight_average=args.weight_average,
        lr_halving=args.lr_halving,
    )
    summary = {k: v[-1] for k, v in history.items() if isinstance(v, list) and v}
    summary["model_dir"] = args.model_dir
    summary["samples"] = os.path.join(args.model_dir, training.SAMPLES_DIR)
    print(json.dumps(summary, indent=2))


def _evaluate(args):
    _check_model_source(args)
    _load_tensorflow()
    from draw_tf import data, training

    model = _load(args, seed=args.seed)
    split = args.split or data.held_out_split(args.dataset)
    ds = data.make_dataset(
        args.dataset, split, args.batch_size, args.data_dir, shuffle=False, image_shape=model.config.image_shape
    )
    result = training.evaluate_nll(model, ds, num_samples=args.iwae_samples, max_batches=args.max_batches)
    result.update(dataset=args.dataset, split=split, **_source(args), units="nats per image")
    if args.output:
        training.write_json_atomic(args.output, result)
    print(json.dumps(result, indent=2))


def _sample(args):
    _check_model_source(args)
    _load_tensorflow()
    from draw_tf import training

    if args.output:
        path = args.output
    elif args.pretrained is not None:
        path = "samples.png"
    else:
        path = os.path.join(args.model_dir, training.SAMPLES_DIR, "samples.png")
    with _without_log_noise():
        model = _load(args)
        training.sample_grid(model, path, args.num_samples, args.seed)
        print(path)
        if args.gif:
            from draw_tf import visualize

            count = min(args.num_samples, 8)
            visualize.save_drawing_gif(model, args.gif, num_samples=count, seed=args.seed, columns=count)
            print(args.gif)


def _check_export_preset(args):
    """With an explicit --preset, its config (with --set) for the check after loading; else None."""
    if args.preset is None:
        if args.set:
            raise UsageError("--set needs --preset: together they name the configuration the model must have.")
        return None
    return _preset_config(args)


def _load_for_export(args, expected):
    """The model of --model_dir or --pretrained; with an explicit --preset, checks that it is that preset."""
    model = _load(args)
    if expected is not None and model.config != expected:
        changed = {k: (getattr(model.config, k), v) for k, v in expected.to_dict().items() if getattr(model.config, k) != v}
        what = f"pretrained model {args.pretrained!r}" if args.pretrained is not None else repr(args.model_dir)
        raise UsageError(f"{what} holds a model that is not the preset {args.preset!r} (stored, preset): {changed}.")
    return model


def _export_saved_model(args):
    _check_model_source(args)
    expected = _check_export_preset(args)
    default_dir = "serving" if args.pretrained is not None else os.path.join(args.model_dir, "export", "serving")
    export_dir = args.export_dir or default_dir
    _load_tensorflow()
    from draw_tf.export import SIGNATURES, export_saved_model

    with _without_log_noise():
        path = export_saved_model(_load_for_export(args, expected), export_dir, args.model_name, args.version)
    print(json.dumps({"saved_model": path, "signatures": list(SIGNATURES)}, indent=2))


def _export_tflite(args):
    _check_model_source(args)
    unknown = [q for q in args.quantization if q not in QUANTIZATIONS]
    if unknown or not args.quantization:
        raise UsageError(f"--quantization takes a list out of {list(QUANTIZATIONS)}, received {args.quantization}.")
    expected = _check_export_preset(args)
    default_dir = "tflite" if args.pretrained is not None else os.path.join(args.model_dir, "export", "tflite")
    output = args.output or default_dir
    if os.path.exists(output) and not os.path.isdir(output):
        raise UsageError(f"--output must be a directory for the .tflite files, received the file {output!r}.")
    jobs = [(q, False, f"{args.model_name}_{q}.tflite") for q in args.quantization]
    if args.device_noise:
        jobs.append(("float32", True, f"{args.model_name}_float32_device_noise.tflite"))
    paths = [os.path.join(output, name) for _, _, name in jobs]
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not args.overwrite:  # checked for all before writing any
        raise UsageError(f"{existing} exist; pass --overwrite to replace them.")
    _load_tensorflow()
    from draw_tf.export import export_tflite

    with _without_log_noise():  # the converter's and the LiteRT interpreter's INFO lines
        model = _load_for_export(args, expected)
        reports = [
            export_tflite(
                model, path, quantization, args.export_batch_size, args.time_steps, device_noise,
                overwrite=args.overwrite,
            )
            for (quantization, device_noise, _), path in zip(jobs, paths)
        ]
    print(json.dumps(reports, indent=2))


def _train_classifier(args):
    overrides = _overrides(args)
    _load_tensorflow()
    from draw_tf import cluttered
    from draw_tf.classifier import get_classifier_preset

    _preset_config(args, get_classifier_preset)  # checks --preset and --set before anything runs
    result = cluttered.train_classifier(
        args.model_dir,
        args.classifier,
        args.preset,
        overrides=overrides,
        data_dir=args.data_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_decay=args.lr_decay,
        seed=args.seed,
        steps_per_epoch=args.steps_per_epoch,
        verbose=1 if sys.stdout.isatty() else 2,
        init_weights=args.init_weights,
        weight_average=args.weight_average,
        gradient_clip=args.gradient_clip,
    )
    result["model_dir"] = args.model_dir
    print(json.dumps(result, indent=2))


_RUN = {
    "train": _train,
    "evaluate": _evaluate,
    "sample": _sample,
    "export_saved_model": _export_saved_model,
    "export_tflite": _export_tflite,
    "train_classifier": _train_classifier,
}


def _raised_by_draw_tf(error):
    """Whether `error` was raised by draw_tf's own code (its check of the input), not deep inside a library."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    package = os.path.dirname(os.path.abspath(__file__))
    return os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(package + os.sep)


def main(argv=None):
    """Runs one command; bad input exits with status 2 after one line on stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ INFO or WARNING lines
    parser = build_parser()
    args, unknown = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if args.command is None:
        if args.show_version:
            from draw_tf import __version__

            print(__version__)
            return 0
        parser.error(f"expected a command: {', '.join(COMMANDS)}")
    command = parser.subcommands[args.command]
    if unknown:
        command.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        _RUN[args.command](args)
    except UsageError as e:
        _fail(command.prog, e)
    except EXPECTED_ERRORS as e:
        if not _raised_by_draw_tf(e):
            raise
        _fail(command.prog, e)
    except KeyboardInterrupt:
        resume = " (the same command resumes from the last checkpoint)" if args.command.startswith("train") else ""
        sys.stderr.write(f"\n{command.prog}: interrupted{resume}\n")
        return 130
    return 0


def run():
    """The `draw-tf` console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
