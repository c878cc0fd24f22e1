"""Would a longer weight average validate better? The mean of a run's last n end-of-epoch weight
averages (`draw-tf train --weight_average`), for several n, on the validation split.

    python -m benchmarks.checkpoint_average --run=~/draw-runs/mnist_const \
        --checkpoints=~/draw-runs/archive/mnist_const --data_dir=$TFDS_DATA_DIR --last=1,2,4,8

A run keeps only its last few checkpoints, so the end-of-epoch ones must be copied aside while it
trains (`--checkpoints`, a directory of `ckpt-STEP.index` / `.data-*` files). n = 1 is the run's
own average at its last archived epoch; n > 1 averages the averages of the last n epochs (uniform
weights over epochs: an average over n epochs instead of the ~2 that `--weight_average=0.999`
spans at 500 steps an epoch). `--weights=raw` averages the trained weights instead. Every candidate
is measured on the same images with the same posterior noise (seeded per batch), so differences
are the weights'. Prints JSON: per n, the epochs averaged and the negative ELBO (nats per image).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re


def archived_checkpoints(directory):
    """The checkpoint prefixes in `directory`, oldest first (by the step in their name)."""
    paths = glob.glob(os.path.join(os.path.expanduser(directory), "ckpt-*.index"))
    steps = sorted(int(re.search(r"ckpt-(\d+)\.index$", p).group(1)) for p in paths)
    if not steps:
        raise FileNotFoundError(f"No ckpt-STEP.index files in {directory!r}.")
    return [os.path.join(os.path.expanduser(directory), f"ckpt-{s}") for s in steps], steps


def checkpoint_weights(model, path, which):
    """The trainable weights stored in checkpoint `path`: its weight average or its raw weights."""
    import tensorflow as tf

    from draw_tf.weight_average import load_weight_average

    if which == "average":
        if not load_weight_average(model, path):
            raise ValueError(f"Checkpoint {path!r} holds no weight average; use --weights=raw.")
    else:
        tf.train.Checkpoint(model=model).read(path).expect_partial()
    return [v.numpy() for v in model.trainable_variables]


def negative_elbo(model, batches, noise_key):
    """Mean negative ELBO over `batches`, the posterior noise of batch i seeded by (noise_key, i)."""
    import tensorflow as tf

    total, count = 0.0, 0
    for i, x in enumerate(batches):
        shape = (int(x.shape[0]), model.config.time_steps, model.config.z_size)
        noise = tf.random.stateless_normal(shape, seed=[noise_key, i])
        total += float(tf.reduce_sum(model.reconstruct(x, noise=noise)["negative_elbo"]))
        count += int(x.shape[0])
    return total / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the run's model_dir (for its config.json)")
    parser.add_argument("--checkpoints", required=True, help="a directory of archived end-of-epoch checkpoints")
    parser.add_argument("--epoch_steps", type=int, default=500, help="steps per epoch (names the epochs)")
    parser.add_argument("--last", default="1,2,4,8", help="comma-separated n: average the last n checkpoints")
    parser.add_argument("--weights", choices=("average", "raw"), default="average")
    parser.add_argument("--dataset", default="binarized_mnist")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=500)
    parser.add_argument("--max_batches", type=int, default=None, help="default: the whole split")
    parser.add_argument("--noise_key", type=int, default=0)
    args = parser.parse_args(argv)

    counts = sorted({int(n) for n in args.last.split(",")})
    if counts[0] < 1:
        raise SystemExit(f"--last: expected positive counts, received {args.last!r}.")

    import numpy as np

    from draw_tf import data
    from draw_tf.model import Draw
    from draw_tf.training import read_model_config

    config = read_model_config(os.path.expanduser(args.run))
    if config is None:
        raise SystemExit(f"--run: expected a draw-tf model_dir with a config.json, received {args.run!r}.")
    paths, steps = archived_checkpoints(args.checkpoints)
    if counts[-1] > len(paths):
        raise SystemExit(f"--last: at most {len(paths)} checkpoints are archived, received n = {counts[-1]}.")
    model = Draw(config)
    stored = [checkpoint_weights(model, p, args.weights) for p in paths[-counts[-1]:]]
    dataset = data.make_dataset(
        args.dataset, args.split, batch_size=args.batch_size, data_dir=args.data_dir, shuffle=False
    )
    batches = [x for i, x in enumerate(dataset) if args.max_batches is None or i < args.max_batches]

    results = []
    for n in counts:
        for variable, *values in zip(model.trainable_variables, *stored[-n:]):
            variable.assign(np.mean(values, axis=0))
        results.append({
            "last": n,
            "epochs": [s // args.epoch_steps for s in steps[-n:]],
            "negative_elbo": negative_elbo(model, batches, args.noise_key),
        })
    summary = {
        "run": args.run,
        "weights": args.weights,
        "split": args.split,
        "num_images": sum(int(x.shape[0]) for x in batches),
        "results": results,
    }
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
