"""How the DRAW classifier's glimpse windows move during its first training steps on cluttered MNIST.

    python -m benchmarks.window_dynamics --data_dir=MNIST_DIR > window_dynamics.json
    python -m benchmarks.window_dynamics --data_dir=MNIST_DIR --variants=1e-3:1,1e-3:0.0625 --steps=400

Each variant (learning_rate:window_rate) trains `cluttered_mnist` from the same seed on the same
fresh training scenes (Adam, gradient norm clipped to 1, batch 64) and, every --every steps,
decodes the eight windows of 256 fixed validation scenes. Printed per variant and check: how far
the window centres moved per training step (pixels, mean over scenes and glimpses), the fraction
of window centres outside the image, the mean stride delta and log gamma, and the validation
error on those scenes. The question it answers: does a window drift off
the image because each Adam step moves it too far (lower window_rate), or for another reason?
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _window_stats(model, images):
    import numpy as np

    out = model(images, return_glimpses=True)
    windows = out["windows"].numpy()  # [b, T, 5]: gx, gy, sigma2, delta, gamma
    logits = out["logits"].numpy()
    size = model.config.image_width
    centres = windows[..., :2]
    outside = np.mean((centres < 0.5) | (centres > size + 0.5))
    return centres, windows, logits, float(outside)


def run_variant(learning_rate, window_rate, steps, every, digits, labels, val_images, val_labels, seed):
    import keras
    import numpy as np

    from draw_tf.classifier import DrawClassifier, get_classifier_preset
    from draw_tf.cluttered import ClutteredScenes, compile_classifier

    keras.utils.set_random_seed(seed)
    model = compile_classifier(DrawClassifier(get_classifier_preset("cluttered_mnist", window_rate=window_rate)), learning_rate)
    scenes = ClutteredScenes(digits, labels, 64, 100, seed=seed)
    checks = []
    previous, _, _, _ = _window_stats(model, val_images)
    start = time.time()
    for first in range(0, steps, every):
        for index in range(first, first + every):
            x, y = scenes[index % len(scenes)]
            model.train_on_batch(x, y)
        centres, windows, logits, outside = _window_stats(model, val_images)
        moved = float(np.mean(np.linalg.norm(centres - previous, axis=-1)) / every)
        previous = centres
        checks.append({
            "step": first + every,
            "centre_move_px_per_step": moved,
            "centres_outside_image": outside,
            "mean_delta_px": float(np.mean(windows[..., 3])),
            "mean_log_gamma": float(np.mean(np.log(windows[..., 4]))),
            "validation_error": float(np.mean(np.argmax(logits, -1) != val_labels)),
        })
    return {"learning_rate": learning_rate, "window_rate": window_rate, "seconds": time.time() - start, "checks": checks}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True, help="the MNIST IDX files (or a tfds data_dir with mnist)")
    parser.add_argument("--variants", default="1e-3:1,5e-4:1,1e-3:0.0625",
                        help="comma-separated learning_rate:window_rate pairs")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    variants = [tuple(float(v) for v in pair.split(":")) for pair in args.variants.split(",")]

    from draw_tf import mnist_scenes
    from draw_tf.cluttered import held_out_scenes

    digits, labels = mnist_scenes.mnist_digits("train", args.data_dir)
    val_images, val_labels = held_out_scenes(args.data_dir, "validation", limit=256)
    results = [
        run_variant(lr, rate, args.steps, args.every, digits, labels, val_images, val_labels, args.seed)
        for lr, rate in variants
    ]
    print(json.dumps({"steps": args.steps, "every": args.every, "seed": args.seed, "variants": results}, indent=1))


if __name__ == "__main__":
    main()
