"""The validation curve of a draw-tf run against the paper, as a PNG and a JSON summary.

    python -m benchmarks.training_curve                         # the shipped mnist model's log
    python -m benchmarks.training_curve --log=RUN/training_log.jsonl --output=docs/training_curve_mnist.png
    python -m benchmarks.training_curve --log=RUN2/training_log.jsonl --compare=RUN1/training_log.jsonl \
        --output=docs/training_curve_mnist_runs.png     # a second run against the first, validation only

Plots the per-epoch negative ELBO (train and validation, nats per image) over epochs and CPU hours,
with the paper's binarized-MNIST bound (80.97 nats, Gregor et al. 2015, Table 2) as a line.
"""

from __future__ import annotations

import argparse
import json
import os

PAPER_NATS = {"mnist": 80.97, "mnist_no_attention": 87.40}


def summary(records):
    best = min(records, key=lambda r: r["val_loss"])
    last10 = [r["val_loss"] for r in records[-10:]]
    return {
        "epochs": records[-1]["epoch"],
        "last_validation_negative_elbo": records[-1]["val_loss"],
        "best_validation_negative_elbo": best["val_loss"],
        "best_epoch": best["epoch"],
        "improvement_over_last_10_epochs": (last10[0] - last10[-1]) if len(last10) > 1 else None,
        "cpu_hours": round(records[-1]["total_wall_seconds"] / 3600.0, 2),
    }


def plot(records, path, paper=None, title="draw-tf mnist", compare=None, labels=("this run", "other run")):
    """`compare`: a second run's records, whose validation curve is drawn beside this run's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    hours = [r["total_wall_seconds"] / 3600.0 for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, x, label in ((axes[0], epochs, "epoch"), (axes[1], hours, "training wall-clock hours (2-core CPU)")):
        ax.plot(x, [r["loss"] for r in records], label="train (running mean over the epoch)", color="tab:gray")
        ax.plot(x, [r["val_loss"] for r in records], label=f"validation (10,000 images){', ' + labels[0] if compare else ''}",
                color="tab:blue", marker=".")
        if compare:
            cx = [r["epoch"] if ax is axes[0] else r["total_wall_seconds"] / 3600.0 for r in compare]
            ax.plot(cx, [r["val_loss"] for r in compare], label=f"validation, {labels[1]}", color="tab:orange", marker=".")
        if paper:
            ax.axhline(paper, color="tab:red", linestyle="--", label=f"paper: {paper} nats")
        ax.set_xlabel(label)
        ax.set_ylabel("negative ELBO, nats per image")
        shown = records + (compare or [])
        top = min(max(r["val_loss"] for r in shown), 200.0)  # the first epochs can start far above
        ax.set_ylim(min(paper or 1e9, min(r["val_loss"] for r in shown)) - 3, top + 5)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="mnist", help="a shipped pretrained model (its log), if --log is not given")
    parser.add_argument("--log", default=None, help="a training_log.jsonl")
    parser.add_argument("--compare", default=None, help="another run's training_log.jsonl, drawn beside (validation)")
    parser.add_argument("--labels", default="this run,other run", help="the two runs' names in the legend, comma-separated")
    parser.add_argument("--output", default=None, help="PNG path (default: docs/training_curve_<name>.png)")
    args = parser.parse_args(argv)
    if args.log:
        from draw_tf.training import read_training_log

        records = read_training_log(args.log)
    else:
        from draw_tf import pretrained_models

        records = pretrained_models.training_log(args.name)
    output = args.output or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", f"training_curve_{args.name}.png")
    compare = None
    if args.compare:
        from draw_tf.training import read_training_log

        compare = read_training_log(args.compare)
    plot(records, output, PAPER_NATS.get(args.name), title=f"draw-tf {args.name}: DRAW on binarized MNIST",
         compare=compare, labels=tuple(args.labels.split(",", 1)))
    result = dict(summary(records), plot=output)
    if compare:
        by_epoch = {r["epoch"]: r["val_loss"] for r in compare}
        result["validation_minus_compared_run_at_equal_epochs"] = {
            r["epoch"]: round(r["val_loss"] - by_epoch[r["epoch"]], 2) for r in records if r["epoch"] in by_epoch}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
