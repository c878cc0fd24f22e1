"""The error curves of a cluttered-MNIST classifier against the paper, as a PNG and a JSON summary.

    python -m benchmarks.classifier_curve                       # the shipped cluttered_mnist classifier's log
    python -m benchmarks.classifier_curve --run=RUN --output=curve.png   # a train_classifier run
    python -m benchmarks.classifier_curve --earlier=benchmarks/results/cluttered_long_training_log.csv

`--earlier=CSV` is the training_log.csv of the run a warm restart (`train_classifier
--init_weights`) started from: its epochs are drawn first and the restart's after them, with a
dotted line where the restart begins, so the plot shows the classifier's whole training.

Plots the per-epoch classification error (training, averaged over the epoch's fresh scenes, and
validation, on the 5,000 fixed validation scenes) with the paper's DRAW result (3.36%, 8 glimpses,
Gregor et al. 2015, Table 1) as a line.
"""

from __future__ import annotations

import argparse
import json
import os

PAPER_ERROR_PERCENT = 3.36


def _csv_log(path):
    """A train_classifier training_log.csv's rows, with 1-based epochs as the shipped logs have (the
    CSV's are Keras's 0-based); none when the file does not exist."""
    from draw_tf.cluttered import read_log_file

    if not os.path.exists(path):
        return []
    return [{**r, "epoch": int(r["epoch"]) + 1} for r in read_log_file(path)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="a train_classifier model_dir (default: the shipped cluttered_mnist log)")
    parser.add_argument("--earlier", metavar="CSV", help="the training_log.csv of the run a warm restart started from")
    parser.add_argument("--output", help="PNG path (default: docs/training_curve_cluttered_mnist.png)")
    args = parser.parse_args(argv)
    if args.run:
        from draw_tf.cluttered import LOG_FILE

        records = _csv_log(os.path.join(args.run, LOG_FILE))
    else:
        from draw_tf import pretrained_models

        records = pretrained_models.training_log("cluttered_mnist")
    if not records:
        parser.error(f"no epochs in the log of {args.run or 'the shipped cluttered_mnist classifier'}")
    restart = None
    if args.earlier:
        if not os.path.isfile(args.earlier):
            parser.error(f"--earlier must be a train_classifier training_log.csv, received {args.earlier!r} (no such file)")
        earlier = _csv_log(args.earlier)
        restart = len(earlier)
        records = earlier + [{**r, "epoch": r["epoch"] + restart} for r in records]
    output = args.output or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "training_curve_cluttered_mnist.png"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    train = [100.0 * (1.0 - r["accuracy"]) for r in records]
    validation = [100.0 * (1.0 - r["val_accuracy"]) for r in records]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, train, label="training (fresh scenes, mean over the epoch)", color="tab:gray")
    ax.plot(epochs, validation, label="validation (5,000 scenes)", color="tab:blue", marker=".")
    if restart:
        ax.axvline(restart + 0.5, color="black", linestyle=":", label=f"warm restart after epoch {restart}")
    ax.axhline(PAPER_ERROR_PERCENT, color="tab:red", linestyle="--", label=f"paper: {PAPER_ERROR_PERCENT}% (test)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("classification error, %")
    ax.set_ylim(0, min(15.0, max(max(train), max(validation)) + 2))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("draw-tf DRAW classifier on 100x100 cluttered MNIST")
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)
    best = min(records, key=lambda r: (1.0 - r["val_accuracy"], r["epoch"]))
    print(json.dumps({
        "epochs": epochs[-1], "best_epoch": best["epoch"], "best_validation_error_percent": round(100 * (1 - best["val_accuracy"]), 2),
        "last_training_error_percent": round(train[-1], 2), "warm_restart_after_epoch": restart, "plot": output,
    }, indent=2))


if __name__ == "__main__":
    main()
