"""Command line: `draw-tf train|evaluate|sample|export_saved_model|export_tflite|train_classifier [--flags]`
(also `python -m draw_tf ...`)."""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
COMMANDS = ("train", "evaluate", "sample", "export_saved_model", "export_tflite", "train_classifier")

flags.DEFINE_string(
    "preset", "quick",
    "Model preset (draw_tf.PRESETS): quick, mnist, mnist_no_attention, mnist_two_digit, svhn, cifar10, "
    "cifar10_logistic; train_classifier: cluttered_mnist (the default there).",
)
flags.DEFINE_string(
    "dataset", "embedded",
    "embedded (ships with the package), binarized_mnist, mnist (dynamic binarization), two_digit_mnist "
    "(60x60, from MNIST digits), svhn_cropped or cifar10 (tfds, colour), or a path to an .npz file of "
    "uint8 images [n, H, W, C] per split (arrays train, validation or test).",
)
flags.DEFINE_string(
    "data_dir", None,
    "tensorflow-datasets data_dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets); for two_digit_mnist "
    "and train_classifier also a directory of the MNIST IDX files (t10k-images-idx3-ubyte.gz, ...).",
)
flags.DEFINE_list(
    "set", [],
    "train, train_classifier: preset fields to change, e.g. --set=time_steps=8,encoder_size=128 (a smaller "
    "model for a quick run; the model_dir's config.json records the result).",
)
flags.DEFINE_string("model_dir", "runs/quickstart", "Directory for config, checkpoints, logs and samples.")
flags.DEFINE_integer("epochs", 10, "Total epochs to train (training resumes from the last checkpoint).")
flags.DEFINE_integer("steps_per_epoch", None, "Batches per epoch (default: the whole training split).")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("save_every_steps", 100, "train: checkpoint every this many steps too (0: after each epoch only).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_float("lr_decay", 1.0, "Learning-rate factor per epoch (1.0: constant; 0.93 with 3e-3 for mnist).")
flags.DEFINE_bool("jit_compile", False, "Keras compile(jit_compile=True): XLA on the whole train step.")
flags.DEFINE_bool("jit_loss", True, "XLA on the T-step forward and backward pass only (Draw(jit_loss=...)).")
flags.DEFINE_enum("strategy", "auto", ["auto", "default", "mirrored", "multi_worker", "tpu"],
                  "train: tf.distribute strategy (auto: a TPU or the GPUs when present, else one device; "
                  "multi_worker: the hosts of $TF_CONFIG). --batch_size is the global batch.")
flags.DEFINE_integer("seed", 0, "Random seed (initialisation, shuffling, noise).")
flags.DEFINE_string("split", None, "evaluate: the split to evaluate (default: validation, or test for svhn_cropped and cifar10).")
flags.DEFINE_enum("classifier", "draw", ["draw", "baseline"],
                  "train_classifier: draw (read attention + LSTM) or baseline (a convnet on the whole image).")
flags.DEFINE_integer("iwae_samples", 0, "evaluate: K for the importance-weighted bound (0 skips it).")
flags.DEFINE_integer("max_batches", None, "evaluate: stop after this many batches.")
flags.DEFINE_integer("num_samples", 64, "sample: number of images in the grid.")
flags.DEFINE_string(
    "output", None,
    "sample: PNG path (default: <model_dir>/samples/samples.png); evaluate: JSON path; "
    "export_tflite: directory for <model_name>_<quantization>.tflite (default: <model_dir>/export/tflite).",
)
flags.DEFINE_string("export_dir", None, "export_saved_model: TF Serving base directory (default: <model_dir>/export/serving).")
flags.DEFINE_string("model_name", "draw", "export_*: the served model's name (directory, and TFLite file prefix).")
flags.DEFINE_integer("version", None, "export_saved_model: version number (default: one above the highest existing).")
flags.DEFINE_list("quantization", ["float32", "float16", "int8"], "export_tflite: variants to write.")
flags.DEFINE_integer("export_batch_size", 1, "export_tflite: the sampler's fixed batch size.")
flags.DEFINE_integer("time_steps", None, "export_tflite: drawing steps T (default: the model's).")
flags.DEFINE_bool("device_noise", False, "export_tflite: also write a sampler that draws its own noise (no input).")
flags.DEFINE_bool("overwrite", False, "export_tflite: replace existing .tflite files.")


def _overrides():
    """--set=name=value,... as a dict; values parsed as JSON numbers/booleans where they are one."""
    overrides = {}
    for item in FLAGS.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise app.UsageError(f"--set takes name=value pairs separated by commas, received {item!r}.")
        try:
            overrides[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name.strip()] = value
    return overrides


def _preset_config(get_preset=None, preset=None):
    """The config of `preset` (default --preset) from `get_preset` (default the DrawConfig presets)
    with --set applied; bad names or values are usage errors."""
    if get_preset is None:
        from draw_tf import get_preset
    preset = preset or FLAGS.preset
    try:
        return get_preset(preset, **_overrides())
    except (ValueError, TypeError) as e:
        raise app.UsageError(f"--preset={preset} --set={','.join(FLAGS.set)}: {e}") from e


def _train():
    from draw_tf import training

    config = _preset_config()
    _, history = training.train(
        config,
        FLAGS.model_dir,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        lr_decay=FLAGS.lr_decay,
        jit_compile=FLAGS.jit_compile,
        jit_loss=FLAGS.jit_loss,
        seed=FLAGS.seed,
        steps_per_epoch=FLAGS.steps_per_epoch,
        verbose=1 if sys.stdout.isatty() else 2,  # a progress bar on a terminal, a line per epoch in logs
        strategy=FLAGS.strategy,
        save_every_steps=FLAGS.save_every_steps or None,
    )
    summary = {k: v[-1] for k, v in history.items() if isinstance(v, list) and v}
    summary["model_dir"] = FLAGS.model_dir
    summary["samples"] = os.path.join(FLAGS.model_dir, training.SAMPLES_DIR)
    print(json.dumps(summary, indent=2))


def _evaluate():
    from draw_tf import data, training

    model = training.load_model(FLAGS.model_dir, seed=FLAGS.seed)
    split = FLAGS.split or data.held_out_split(FLAGS.dataset)
    ds = data.make_dataset(
        FLAGS.dataset, split, FLAGS.batch_size, FLAGS.data_dir, shuffle=False, image_shape=model.config.image_shape
    )
    result = training.evaluate_nll(model, ds, num_samples=FLAGS.iwae_samples, max_batches=FLAGS.max_batches)
    result.update(dataset=FLAGS.dataset, split=split, model_dir=FLAGS.model_dir, units="nats per image")
    text = json.dumps(result, indent=2)
    if FLAGS.output:
        training.write_json_atomic(FLAGS.output, result)
    print(text)


def _sample():
    from draw_tf import training

    model = training.load_model(FLAGS.model_dir)
    path = FLAGS.output or os.path.join(FLAGS.model_dir, training.SAMPLES_DIR, "samples.png")
    training.sample_grid(model, path, FLAGS.num_samples, FLAGS.seed)
    print(path)


def _load_for_export():
    """The model of --model_dir; with an explicit --preset, checks that the stored model is that preset."""
    from draw_tf import training

    model = training.load_model(FLAGS.model_dir)
    if FLAGS["preset"].present and model.config != _preset_config():
        expected = _preset_config()
        changed = {k: (getattr(model.config, k), v) for k, v in expected.to_dict().items() if getattr(model.config, k) != v}
        raise ValueError(
            f"{FLAGS.model_dir!r} holds a model that is not the preset {FLAGS.preset!r} (stored, preset): {changed}."
        )
    return model


def _export_saved_model():
    from draw_tf.export import SIGNATURES, export_saved_model

    model = _load_for_export()
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export", "serving")
    path = export_saved_model(model, export_dir, FLAGS.model_name, FLAGS.version)
    print(json.dumps({"saved_model": path, "signatures": list(SIGNATURES)}, indent=2))


def _export_tflite():
    from draw_tf.export import QUANTIZATIONS, export_tflite

    unknown = [q for q in FLAGS.quantization if q not in QUANTIZATIONS]
    if unknown or not FLAGS.quantization:
        raise app.UsageError(f"--quantization takes a list out of {list(QUANTIZATIONS)}, received {FLAGS.quantization}.")
    for name, value in (("export_batch_size", FLAGS.export_batch_size), ("time_steps", FLAGS.time_steps)):
        if value is not None and value < 1:
            raise app.UsageError(f"--{name} must be a positive integer, received {value}.")
    output = FLAGS.output or os.path.join(FLAGS.model_dir, "export", "tflite")
    if os.path.exists(output) and not os.path.isdir(output):
        raise app.UsageError(f"--output must be a directory for the .tflite files, received the file {output!r}.")
    jobs = [(q, False, f"{FLAGS.model_name}_{q}.tflite") for q in FLAGS.quantization]
    if FLAGS.device_noise:
        jobs.append(("float32", True, f"{FLAGS.model_name}_float32_device_noise.tflite"))
    paths = [os.path.join(output, name) for _, _, name in jobs]
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not FLAGS.overwrite:  # checked for all before writing any
        raise app.UsageError(f"{existing} exist; pass --overwrite to replace them.")
    model = _load_for_export()
    reports = [
        export_tflite(
            model, path, quantization, FLAGS.export_batch_size, FLAGS.time_steps, device_noise, overwrite=FLAGS.overwrite
        )
        for (quantization, device_noise, _), path in zip(jobs, paths)
    ]
    print(json.dumps(reports, indent=2))


def _train_classifier():
    from draw_tf import cluttered
    from draw_tf.classifier import get_classifier_preset

    preset = FLAGS.preset if FLAGS["preset"].present else "cluttered_mnist"
    _preset_config(get_classifier_preset, preset)  # checks --preset and --set before anything runs
    result = cluttered.train_classifier(
        FLAGS.model_dir,
        FLAGS.classifier,
        preset,
        overrides=_overrides(),
        data_dir=FLAGS.data_dir,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate,
        seed=FLAGS.seed,
        steps_per_epoch=FLAGS.steps_per_epoch,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    result.pop("history")
    result["model_dir"] = FLAGS.model_dir
    print(json.dumps(result, indent=2))


def main(argv):
    commands = [a for a in argv[1:]]
    if len(commands) != 1 or commands[0] not in COMMANDS:
        raise app.UsageError(f"Expected exactly one command out of {list(COMMANDS)}, received {commands}.")
    if FLAGS.set and commands[0] in ("evaluate", "sample"):
        raise app.UsageError(f"--set applies to train, train_classifier and the export checks, not to {commands[0]}.")
    {
        "train": _train, "evaluate": _evaluate, "sample": _sample,
        "export_saved_model": _export_saved_model, "export_tflite": _export_tflite,
        "train_classifier": _train_classifier,
    }[commands[0]]()


def run():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    run()
