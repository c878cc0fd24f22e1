"""Would a longer weight average validate better? The mean of a run's last n end-of-epoch weight
averages (`draw-tf train --weight_average`), for several n, on the validation split.

    python -m benchmarks.checkpoint_average --run=~/draw-runs/mnist_const \
        --checkpoints=~/draw-runs/archive/mnist_const --data_dir=$TFDS_DATA_DIR --last=1,2,4,8

A run keeps only its last few checkpoints, so the end-of-epoch ones must be copied aside while it
trains (`--checkpoints`, a directory of `ckpt-N.index` / `.data-*` files; a checkpoint saved inside
an epoch is refused). n = 1 is the run's own average at its last archived epoch; n > 1 averages the
averages of the last n epochs (uniform over epochs: an average over n epochs instead of the ~2 that
`--weight_average=0.999` spans at 500 steps an epoch). `--weights=raw` averages the trained weights
instead. Every candidate is measured on the same images with the same posterior noise (batch i's
from (--noise_key, i)), so the differences are the weights'. Prints JSON: the settings, and per n
the epochs averaged and the negative ELBO (nats per image).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re


def archived_checkpoints(directory):
    """The checkpoint prefixes `ckpt-N` in `directory`, in the order of N."""
    directory = os.path.expanduser(directory)
    found = {}
    for path in glob.glob(os.path.join(directory, "ckpt-*.index")):
        match = re.fullmatch(r"ckpt-(\d+)\.index", os.path.basename(path))
        if match:
            found[int(match.group(1))] = path[: -len(".index")]
    if not found:
        raise FileNotFoundError(f"Expected ckpt-N.index files in {directory!r}, received none.")
    return [found[n] for n in sorted(found)]


def parse_counts(text):
    """'1,2,4' -> [1, 2, 4] (sorted, distinct, each at least 1)."""
    try:
        counts = sorted({int(n) for n in text.split(",")})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise ValueError(f"--last: expected comma-separated counts of at least 1 (e.g. 1,2,4), received {text!r}.")
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the run's model_dir (for its config.json)")
    parser.add_argument("--checkpoints", required=True, help="a directory of archived end-of-epoch checkpoints")
    parser.add_argument("--last", default="1,2,4,8", help="comma-separated n: average the last n checkpoints")
    parser.add_argument("--weights", choices=("average", "raw"), default="average")
    parser.add_argument("--dataset", default="binarized_mnist")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=500)
    parser.add_argument("--max_batches", type=int, default=None, help="default: the whole split")
    parser.add_argument("--noise_key", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = parse_counts(args.last)
    except ValueError as e:
        parser.error(str(e))
    if args.max_batches is not None and args.max_batches < 1:
        parser.error(f"--max_batches: expected at least 1, received {args.max_batches}.")

    import numpy as np

    from draw_tf import data, training
    from draw_tf.model import Draw
    from draw_tf.weight_average import load_checkpoint_weights

    config = training.read_model_config(os.path.expanduser(args.run))
    if config is None:
        parser.error(f"--run: expected a draw-tf model_dir with a config.json, received {args.run!r}.")
    paths = archived_checkpoints(args.checkpoints)[-counts[-1]:]
    if counts[-1] > len(paths):
        parser.error(f"--last: at most {len(paths)} checkpoints are archived, received n = {counts[-1]}.")
    epochs = []
    for path in paths:
        epoch, step = training.checkpoint_position(path)
        if step:
            parser.error(f"--checkpoints: expected end-of-epoch checkpoints, received {path!r} ({step} steps into epoch {epoch + 1}).")
        epochs.append(epoch)

    model = Draw(config)
    stored = []
    for path in paths:
        load_checkpoint_weights(model, path, args.weights)
        stored.append([v.numpy() for v in model.trainable_variables])
    dataset = data.make_dataset(args.dataset, args.split, batch_size=args.batch_size, data_dir=args.data_dir, shuffle=False)
    if args.max_batches is not None:
        dataset = dataset.take(args.max_batches)

    results = []
    for n in counts:
        for variable, *values in zip(model.trainable_variables, *stored[-n:]):
            variable.assign(np.mean(values, axis=0))
        measured = training.evaluate_nll(model, dataset, noise_key=args.noise_key)
        results.append({"last": n, "epochs": epochs[-n:], "negative_elbo": measured["negative_elbo"]})
    summary = {
        "run": args.run,
        "checkpoints": args.checkpoints,
        "weights": args.weights,
        "dataset": args.dataset,
        "split": args.split,
        "num_images": measured["num_images"],
        "noise_key": args.noise_key,
        "results": results,
    }
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
