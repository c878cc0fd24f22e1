"""What moves when DRAW's training loss spikes: per-step loss and gradient norms, and the attention
windows on fixed validation images, for one or more learning_rate:window_rate variants.

    python -m benchmarks.generator_dynamics --data_dir=MNIST_DIR > two_digit_dynamics.json
    python -m benchmarks.generator_dynamics --data_dir=MNIST_DIR --variants=1e-3:0.0625:zeros,1e-3:0.0625:data

Each variant (learning_rate:window_rate[:canvas_init], canvas_init "zeros" unless given) trains `--preset` on `--dataset` from the same seed on the same batches (Adam, the
preset's gradient clip; the step of `Draw.train_step`, with the gradient norms kept before the
clip). Every step: the loss and the gradient norm of each weight group. Every --every steps, on
--val_images fixed validation images: the negative ELBO, the fraction of write and read window
centres outside the image, the write gain 1/gamma (median and max over images and steps), the
write stride, and the mean of sigmoid(c_0), the learned starting canvas. A spike is a step whose
loss exceeds --spike times the median of the 50 steps before it; for each, the gradient norms of
that step and the window statistics of the check before it are printed. The question it answers:
is a spike a jump of the attention windows (centre or gain) after a large Adam step, or something
else?
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GROUPS = ("write_window", "read_window", "patch", "initial_canvas", "other")


def _group(path):
    if "initial_canvas" in path:
        return "initial_canvas"
    if "write" in path and "window" in path:
        return "write_window"
    if "read" in path and "window" in path:
        return "read_window"
    if "patch" in path:
        return "patch"
    return "other"


def _window_stats(model, images):
    import numpy as np

    out = model(images, return_sequences=True)
    reconstruction, kl = model.negative_elbo_terms(images)
    height, width = model.config.image_height, model.config.image_width
    stats = {"validation_loss": float(np.mean(reconstruction + kl))}
    for name in ("read_windows", "write_windows"):
        if name not in out:
            continue
        w = out[name].numpy()  # [b, T, 5]: gx, gy, sigma2, delta, gamma
        outside = (w[..., 0] < 0.5) | (w[..., 0] > width + 0.5) | (w[..., 1] < 0.5) | (w[..., 1] > height + 0.5)
        stats[f"{name}_outside"] = float(np.mean(outside))
        stats[f"{name}_delta_px"] = float(np.median(w[..., 3]))
        if name == "write_windows":
            gain = 1.0 / w[..., 4]
            stats["write_gain_median"] = float(np.median(gain))
            stats["write_gain_max"] = float(np.max(gain))
    stats["canvas_logit_abs_max"] = float(np.max(np.abs(out["logits"].numpy())))
    stats["initial_canvas_mean_probability"] = float(np.mean(1 / (1 + np.exp(-model.cell.initial_canvas.numpy()))))
    return stats


def run_variant(args, learning_rate, window_rate, canvas_init, val_images):
    import keras
    import numpy as np
    import tensorflow as tf

    from draw_tf import Draw, data, losses, training
    from draw_tf.config import get_preset

    keras.utils.set_random_seed(args.seed)
    config = get_preset(args.preset, **{**args.overrides, "window_rate": window_rate})
    model = Draw(config, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.build()
    model.optimizer.build(model.trainable_variables)
    if canvas_init == "data":  # as draw_tf.training.train does for a new run
        stream = data.TrainingStream(args.dataset, data_dir=args.data_dir, image_shape=config.image_shape)
        model.cell.initial_canvas.assign(training.initial_canvas_logits(stream.mean_image(limit=10_000)))
    groups = [_group(w.path) for w in model.trainable_variables]
    compiled = model._compiled("_loss_and_gradients")

    @tf.function
    def step(x):
        noise = model._training_noise(tf.shape(x)[0])
        loss, _, _, gradients = compiled(x, noise, 1.0)
        norms = {g: tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(d)) for d, k in zip(gradients, groups) if k == g]))
                 for g in GROUPS if g in groups}
        gradients = losses.clip_gradients(gradients, config.grad_clip_norm, 1)
        model.optimizer.apply(gradients, model.trainable_variables)
        return loss, norms

    batches = data.make_dataset(args.dataset, "train", args.batch_size, args.data_dir, seed=args.seed,
                                drop_remainder=True, image_shape=config.image_shape).repeat()
    steps, checks = [], [{"step": 0, **_window_stats(model, val_images)}]
    start = time.time()
    for index, x in enumerate(batches.take(args.steps)):
        loss, norms = step(x)
        steps.append({"loss": float(loss), **{f"grad_{k}": float(v) for k, v in norms.items()}})
        if (index + 1) % args.every == 0:
            checks.append({"step": index + 1, **_window_stats(model, val_images)})
    seconds = time.time() - start
    losses_so_far = np.array([s["loss"] for s in steps])
    spikes = []
    for i in range(50, len(steps)):
        base = float(np.median(losses_so_far[i - 50:i]))
        if losses_so_far[i] > args.spike * base:
            before = [c for c in checks if c["step"] <= i][-1]
            spikes.append({"step": i + 1, "loss": losses_so_far[i], "median_before": base, **steps[i],
                           "grad_norms_5_steps_before": steps[i - 5:i], "check_before": before})
    return {
        "learning_rate": learning_rate, "window_rate": window_rate, "canvas_init": canvas_init, "seconds": seconds,
        "loss_per_100_steps": [float(np.mean(losses_so_far[i:i + 100])) for i in range(0, len(steps), 100)],
        "checks": checks, "spikes": spikes,
    }


def main(argv=None):
    from draw_tf import cli

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="the MNIST IDX files (or a tfds data_dir)")
    parser.add_argument("--preset", default="mnist_two_digit")
    parser.add_argument("--dataset", default="two_digit_mnist")
    parser.add_argument("--set", type=cli._list, default=[], metavar="NAME=VALUE,...",
                        help="preset fields to change, as `draw-tf train --set` (results/two_digit_dynamics.json "
                             "used read_size=2, the two-digit preset's read before it became 12)")
    parser.add_argument("--variants", default="1e-3:1",
                        help="comma-separated learning_rate:window_rate[:canvas_init] (canvas_init: zeros or data)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--val_images", type=int, default=200)
    parser.add_argument("--spike", type=float, default=1.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.overrides = cli._overrides(args)
    variants = []
    for spec in args.variants.split(","):
        lr, rate, *init = spec.split(":")
        variants.append((float(lr), float(rate), init[0] if init else "zeros"))

    import numpy as np

    from draw_tf import data

    val = data.load_images(args.dataset, "validation", args.data_dir, seed=1).take(args.val_images)
    val_images = np.stack(list(val.as_numpy_iterator()))
    results = [run_variant(args, lr, rate, init, val_images) for lr, rate, init in variants]
    print(json.dumps({"preset": args.preset, "set": args.overrides, "dataset": args.dataset, "steps": args.steps, "every": args.every,
                      "batch_size": args.batch_size, "seed": args.seed, "variants": results}, indent=1))


if __name__ == "__main__":
    main()
