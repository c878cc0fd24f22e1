"""Where a cluttered-MNIST classifier's glimpses land relative to the digit, and how its errors
depend on it.

    python -m benchmarks.classifier_windows --data_dir=MNIST_DIR                     # the shipped classifier
    python -m benchmarks.classifier_windows --data_dir=MNIST_DIR --model=RUN/model.keras
    python -m benchmarks.classifier_windows --data_dir=MNIST_DIR --run=RUN             # its best epoch so far

On the first --scenes validation scenes (the digit positions are recomputed from the scenes' seed,
as `draw_tf.mnist_scenes.cluttered_scenes` draws them): per glimpse, the median distance from the
window centre to the digit's centre, the median stride and filter standard deviation; the share of scenes where a glimpse
after the first comes within --near pixels of the digit's centre, and the error with and without;
the mean signed offset of the windows from the digit's centre (a bias, as opposed to scatter) and
the error when glimpses 2..T are moved by minus the last glimpse's mean offset (onto the digit).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import studied_classifier  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    studied_classifier.add_arguments(parser)
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--near", type=float, default=8.0, help="pixels")
    args = parser.parse_args(argv)

    import numpy as np

    from draw_tf import cluttered, mnist_scenes

    name, model = studied_classifier.load(args, parser, draw_only=True)
    size = model.config.image_width
    x, y = cluttered.held_out_scenes(args.data_dir, "validation", size=size, limit=args.scenes)
    top_left = mnist_scenes.cluttered_digit_positions(len(x), size, cluttered.SCENE_SEEDS["validation"])
    centre = top_left[:, ::-1] + (mnist_scenes.DIGIT_SIZE + 1) / 2.0  # (x, y) in the paper's 1-based pixels
    outs = [model(x[i:i + 250], return_glimpses=True) for i in range(0, len(x), 250)]
    windows = np.concatenate([o["windows"].numpy() for o in outs])  # [n, T, 5]
    correct = np.concatenate([o["logits"].numpy() for o in outs]).argmax(-1) == y
    distance = np.linalg.norm(windows[..., :2] - centre[:, None], axis=-1)  # [n, T]
    near = distance[:, 1:].min(axis=1) < args.near
    offset = (windows[..., :2] - centre[:, None]).mean(axis=0)  # [T, 2]: mean (x, y) offset per glimpse
    moved = -offset[-1]
    moved_logits = np.concatenate([model(x[i:i + 250], window_shift=moved).numpy() for i in range(0, len(x), 250)])
    print(json.dumps({
        "model": name, "scenes": len(x), "near_px": args.near,
        "error": float(1 - correct.mean()),
        "median_distance_px_per_glimpse": [round(float(v), 2) for v in np.median(distance, axis=0)],
        "median_stride_px_per_glimpse": [round(float(v), 2) for v in np.median(windows[..., 3], axis=0)],
        "median_sigma_px_per_glimpse": [round(float(v), 2) for v in np.median(np.sqrt(windows[..., 2]), axis=0)],
        "share_with_a_glimpse_near_the_digit": float(near.mean()),
        "error_when_near": float(1 - correct[near].mean()),
        "error_when_never_near": float(1 - correct[~near].mean()) if (~near).any() else None,
        "mean_offset_x_px_per_glimpse": [round(float(v), 2) for v in offset[:, 0]],
        "mean_offset_y_px_per_glimpse": [round(float(v), 2) for v in offset[:, 1]],
        "glimpses_2_to_T_moved_by_px": [round(float(v), 2) for v in moved],
        "error_with_glimpses_moved": float(np.mean(moved_logits.argmax(-1) != y)),
    }, indent=1))


if __name__ == "__main__":
    main()
