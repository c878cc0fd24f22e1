"""Command line: `draw-tf train|evaluate|sample [--flags]` (also `python -m draw_tf ...`)."""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
COMMANDS = ("train", "evaluate", "sample")

flags.DEFINE_string("preset", "quick", "Model preset: quick, mnist, mnist_no_attention, mnist_two_digit, svhn, cifar10.")
flags.DEFINE_string("dataset", "embedded", "embedded (ships with the package), binarized_mnist, or mnist (dynamic binarization).")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data_dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).")
flags.DEFINE_string("model_dir", "runs/quickstart", "Directory for config, checkpoints, logs and samples.")
flags.DEFINE_integer("epochs", 10, "Total epochs to train (training resumes from the last checkpoint).")
flags.DEFINE_integer("steps_per_epoch", None, "Batches per epoch (default: the whole training split).")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_float("lr_decay", 1.0, "Learning-rate factor per epoch (1.0: constant; 0.93 with 3e-3 for mnist).")
flags.DEFINE_bool("jit_compile", False, "Keras compile(jit_compile=True): XLA on the whole train step.")
flags.DEFINE_bool("jit_loss", True, "XLA on the T-step forward and backward pass only (Draw(jit_loss=...)).")
flags.DEFINE_integer("seed", 0, "Random seed (initialisation, shuffling, noise).")
flags.DEFINE_string("split", "validation", "evaluate: the split to evaluate.")
flags.DEFINE_integer("iwae_samples", 0, "evaluate: K for the importance-weighted bound (0 skips it).")
flags.DEFINE_integer("max_batches", None, "evaluate: stop after this many batches.")
flags.DEFINE_integer("num_samples", 64, "sample: number of images in the grid.")
flags.DEFINE_string("output", None, "sample: PNG path (default: <model_dir>/samples/samples.png); evaluate: JSON path.")


def _train():
    from draw_tf import get_preset, training

    config = get_preset(FLAGS.preset)
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
    )
    summary = {k: v[-1] for k, v in history.items() if isinstance(v, list) and v}
    summary["model_dir"] = FLAGS.model_dir
    summary["samples"] = os.path.join(FLAGS.model_dir, training.SAMPLES_DIR)
    print(json.dumps(summary, indent=2))


def _evaluate():
    from draw_tf import data, training

    model = training.load_model(FLAGS.model_dir, seed=FLAGS.seed)
    ds = data.make_dataset(FLAGS.dataset, FLAGS.split, FLAGS.batch_size, FLAGS.data_dir, shuffle=False)
    result = training.evaluate_nll(model, ds, num_samples=FLAGS.iwae_samples, max_batches=FLAGS.max_batches)
    result.update(dataset=FLAGS.dataset, split=FLAGS.split, model_dir=FLAGS.model_dir, units="nats per image")
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


def main(argv):
    commands = [a for a in argv[1:]]
    if len(commands) != 1 or commands[0] not in COMMANDS:
        raise app.UsageError(f"Expected exactly one command out of {list(COMMANDS)}, received {commands}.")
    {"train": _train, "evaluate": _evaluate, "sample": _sample}[commands[0]]()


def run():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    run()
