"""Does a DRAW classifier miss thin strokes between its filters' samples? Its error with a floor
on each filter's width, sigma >= floor x stride, put in at test time only.

    python -m benchmarks.classifier_sigma_floor --data_dir=MNIST_DIR [--run=RUN | --model=M.keras]

By its last glimpses the shipped classifier samples at a stride delta of about 2.3 px with sigma
about 0.35 delta, so a stroke one pixel wide can fall between two samples. Here every glimpse's
variance is raised to sigma^2 + (floor x delta)^2 (smooth; floor 0 is the classifier as trained)
and the error is measured on new scenes of the validation digits (the seed of
classifier_selection's first fresh set), overall and by the digit's ink quarter (cut at the
training digits' quartiles; quarter 1 the thinnest). Also prints the median stride, sigma and
sigma / stride per glimpse as trained. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import studied_classifier  # noqa: E402

FLOORS = (0.0, 0.25, 0.5, 0.75, 1.0)
SCENE_SEED = 1  # classifier_selection.FRESH_SEEDS[0]: apart from the validation, test and training scenes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    studied_classifier.add_arguments(parser)
    args = parser.parse_args(argv)

    import numpy as np

    from draw_tf import attention, mnist_scenes

    model_name, model = studied_classifier.load(args, parser, draw_only=True)

    class FlooredFilterbank(attention.Filterbank):
        floor = 0.0

        def call(self, window):
            window = attention.Window(*window)
            return super().call(window._replace(sigma2=window.sigma2 + (self.floor * window.delta) ** 2))

    cfg = model.config
    # Keras locks a built model's layers; the filterbank has no weights, so it only changes class
    model.filterbank.__class__ = FlooredFilterbank
    (train, _), (digits, labels) = (mnist_scenes.mnist_digits(split, args.data_dir) for split in ("train", "validation"))
    scenes, _ = mnist_scenes.cluttered_scenes(digits, labels, size=cfg.image_width, seed=SCENE_SEED)
    x = scenes.astype(np.float32) / 255.0
    quarter = np.digitize(studied_classifier.ink(digits), studied_classifier.ink_quarter_edges(train))

    report = {"model": model_name, "scenes": int(len(x))}
    for floor in FLOORS:
        model.filterbank.floor = floor
        outs = [model(x[i:i + 250], return_glimpses=True) for i in range(0, len(x), 250)]
        wrong = np.concatenate([o["logits"].numpy().argmax(-1) for o in outs]) != labels
        report[f"floor_{floor}"] = {
            "error": round(float(wrong.mean()), 5),
            "error_by_ink_quarter": [round(float(wrong[quarter == q].mean()), 5) for q in range(4)],
        }
        if floor == 0.0:
            windows = np.concatenate([o["windows"].numpy() for o in outs])  # [n, T, (gx, gy, sigma2, delta, gamma)]
            sigma, delta = np.sqrt(windows[..., 2]), windows[..., 3]
            report["as_trained_median_per_glimpse"] = {
                "stride_px": [round(float(v), 2) for v in np.median(delta, axis=0)],
                "sigma_px": [round(float(v), 2) for v in np.median(sigma, axis=0)],
                "sigma_over_stride": [round(float(v), 3) for v in np.median(sigma / delta, axis=0)],
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
