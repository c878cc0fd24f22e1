"""Wall-clock from the first training step to a validation negative ELBO at or below a target.

    python -m benchmarks.time_to_target --data_dir=../shared/tensorflow_datasets \
        --preset=mnist --batch=100 --learning_rate=2e-3 --target=100 --max_minutes=80

Trains with `model.fit` on tfds `binarized_mnist` (train split), evaluates the negative ELBO on
the whole validation split every `--eval_every` steps, and prints one JSON line per evaluation
and a final summary line. Training time excludes the evaluations (they are reported
separately); the first step's compilation is included. Adam with the learning rate decayed
exponentially by `--decay` per epoch (1.0 = constant). Stops at the target or the time limit.
Nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="tfds data_dir holding binarized_mnist")
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--decay", type=float, default=1.0, help="learning-rate factor per epoch")
    parser.add_argument("--target", type=float, default=100.0, help="validation negative ELBO, nats")
    parser.add_argument("--eval_every", type=int, default=500, help="training steps between evaluations")
    parser.add_argument("--max_minutes", type=float, default=60.0, help="training-time limit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    from draw_tf import Draw, data
    from draw_tf.optimizer import adam_with_decay

    keras.utils.set_random_seed(args.seed)
    model = Draw(args.preset, seed=args.seed)
    steps_per_epoch = 50_000 // args.batch
    model.compile(optimizer=adam_with_decay(args.learning_rate, args.decay, steps_per_epoch))
    train = data.make_dataset("binarized_mnist", "train", args.batch, args.data_dir, seed=args.seed,
                              drop_remainder=True).repeat()
    validation = data.make_dataset("binarized_mnist", "validation", 500, args.data_dir, shuffle=False)

    train_seconds = eval_seconds = 0.0
    steps = 0
    history = []
    reached = None
    while train_seconds < args.max_minutes * 60:
        start = time.perf_counter()
        fit = model.fit(train, steps_per_epoch=args.eval_every, epochs=1, verbose=0).history
        train_seconds += time.perf_counter() - start
        steps += args.eval_every
        start = time.perf_counter()
        result = model.evaluate(validation, verbose=0, return_dict=True)
        eval_seconds += time.perf_counter() - start
        point = {
            "steps": steps, "epochs": steps / steps_per_epoch, "train_minutes": train_seconds / 60,
            "eval_minutes": eval_seconds / 60, "train_loss": fit["loss"][-1],
            "validation_negative_elbo": result["loss"], "validation_kl": result["kl"],
        }
        history.append(point)
        print(json.dumps(point), flush=True)
        if result["loss"] <= args.target:
            reached = point
            break
    print(json.dumps({
        "benchmark": "time_to_target", "preset": args.preset, "batch_size": args.batch,
        "learning_rate": args.learning_rate, "decay_per_epoch": args.decay, "target_nats": args.target,
        "reached": reached is not None,
        "train_minutes_to_target": reached["train_minutes"] if reached else None,
        "best_validation_negative_elbo": min(p["validation_negative_elbo"] for p in history),
        "command": " ".join(sys.argv),
    }), flush=True)


if __name__ == "__main__":
    main()
