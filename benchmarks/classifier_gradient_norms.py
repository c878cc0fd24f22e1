"""Is the classifier's gradient clip active? The norms of each weight tensor's gradient, and of
all of them together, on training batches, for a studied classifier and for the same preset's
initial weights.

    python -m benchmarks.classifier_gradient_norms --data_dir=MNIST_DIR [--run=RUN | --model=M.keras]

`compile_classifier` uses Keras's `clipnorm=1.0`, which clips each weight tensor's gradient to norm
1 on its own; the DRAW generator clips the global norm to 10. This measures how often each would
act: the share of (batch, tensor) gradients above norm 1 and the global norms' median and maximum,
on `--batches` training batches of 64 fresh scenes (training mode, the loss `compile_classifier`
uses: the last glimpse's cross-entropy). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import studied_classifier  # noqa: E402

SCENE_SEED = 5  # training scenes apart from the runs' own (seed 0)


def gradient_norms(model, scenes, batches):
    """[batches, tensors] norms of each trainable tensor's gradient, and the tensors' paths."""
    import keras
    import numpy as np
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rows = []
    for i in range(batches):
        x, y = scenes[i]
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        rows.append([float(tf.norm(g)) for g in tape.gradient(loss, model.trainable_variables)])
    return np.array(rows), [v.path.split("/", 1)[1] for v in model.trainable_variables]


def summary(norms, names, clipnorm=1.0):
    import numpy as np

    total = np.sqrt((norms**2).sum(axis=1))
    return {
        "global_norm_median": float(np.median(total)),
        "global_norm_max": float(total.max()),
        f"share_of_tensor_gradients_above_{clipnorm:g}": float((norms > clipnorm).mean()),
        "per_tensor": {
            name: {
                "median": round(float(np.median(norms[:, j])), 4),
                "max": round(float(norms[:, j].max()), 4),
                f"share_above_{clipnorm:g}": float((norms[:, j] > clipnorm).mean()),
            }
            for j, name in enumerate(names)
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    studied_classifier.add_arguments(parser)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches: expected at least 1, received {args.batches}.")

    import keras

    from draw_tf import cluttered, mnist_scenes

    model_name, model = studied_classifier.load(args, parser, draw_only=True)
    digits, labels = mnist_scenes.mnist_digits("train", args.data_dir)
    scenes = cluttered.ClutteredScenes(digits, labels, batch_size=64, seed=SCENE_SEED)
    keras.utils.set_random_seed(0)  # the initial weights of a train_classifier run of seed 0
    initial = cluttered.build_classifier("draw", "cluttered_mnist", **model.config.to_dict())
    report = {"batches": args.batches, "batch_size": 64}
    for name, studied in ((model_name, model), ("initial weights (same config)", initial)):
        report[name] = summary(*gradient_norms(studied, scenes, args.batches))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
