"""Why a cluttered-MNIST classifier validates better than it tests: the luck of picking the best
epoch on one fixed set of scenes, or a real difference between the validation and test digits.

    python -m benchmarks.classifier_selection --data_dir=MNIST_DIR                 # the shipped classifier
    python -m benchmarks.classifier_selection --data_dir=MNIST_DIR --run=RUN        # a run's best epoch so far

A run keeps the epoch whose weights err least on the 5,000 validation scenes (one per held-out
training digit, made once with `cluttered.SCENE_SEEDS["validation"]`). Those weights are measured on:

- `validation_selection`: those very scenes (the number the run picked its epoch by);
- `validation_fresh`: new scenes of the same 5,000 digits (other seeds: new positions and clutter).
  If the error rises here, the pick was partly luck of those scenes;
- `test_reported`: the 10,000 test scenes of the reported test error, and its two halves (the
  MNIST test set's first 5,000 digits come from NIST's SD-3 writers, the last 5,000 from SD-1's);
- `test_fresh`: new scenes of the same 10,000 test digits;
- `test_no_clutter`: the reported test scenes' digits at the same positions without fragments, by
  half (are the digits themselves harder, or their clutter?);
- `train_fresh`: scenes of --train_digits training digits (a fixed random choice) with a fresh seed,
  as training makes them (the training log's error is the mean over an epoch of changing weights).

Validation-fresh against test-fresh is then a difference of digits, not of scenes or selection.
`by_ink_quarter` splits validation-fresh and the reported test scenes (with and without clutter)
by the digit's ink (pixels above 127), in quarters cut at the training digits' quartiles; for a
DRAW classifier also how often its last glimpse's centre ends outside the digit's 28x28 box, and
the error when it ends inside. Each error comes with its binomial standard error. Prints JSON.
`--errors_picture=PATH` (a DRAW classifier) also writes a PNG of the first 12 misclassified test
scenes of the thinnest quarter, one row each: glimpses 1, 2, 4 and 8 (red: the grid of filter centres).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import studied_classifier  # noqa: E402

FRESH_SEEDS = (1, 2)  # scene seeds apart from cluttered.SCENE_SEEDS and from training's (seed, epoch) pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    studied_classifier.add_arguments(parser)
    parser.add_argument("--train_digits", type=int, default=10_000)
    parser.add_argument("--errors_picture", metavar="PATH", help="a PNG of thin test digits' errors (DRAW only)")
    args = parser.parse_args(argv)

    import numpy as np

    from draw_tf import cluttered, mnist_scenes

    model_name, model = studied_classifier.load(args, parser)
    is_draw = hasattr(model, "config")  # a DRAW classifier (it has windows), or the convnet
    size = model.config.image_width if is_draw else model.input_shape[2]

    def wrong(digits, labels, seed, num_fragments=8):
        """Per scene of these digits made with this seed: whether the classifier errs, and for a
        DRAW classifier whether its last glimpse's centre ends outside the digit's 28x28 box."""
        images, _ = mnist_scenes.cluttered_scenes(digits, labels, size=size, num_fragments=num_fragments, seed=seed)
        x = images.astype(np.float32) / 255.0
        outs = [model(x[i:i + 250], return_glimpses=True) if is_draw else {"logits": model(x[i:i + 250])}
                for i in range(0, len(x), 250)]
        mistakes = np.concatenate([np.asarray(o["logits"]).argmax(-1) for o in outs]) != labels
        if not is_draw:
            return mistakes, None
        last = np.concatenate([o["windows"][:, -1, :2].numpy() for o in outs])  # (gx, gy), 1-based pixels
        top_left = mnist_scenes.cluttered_digit_positions(len(digits), size, seed)
        centre = top_left[:, ::-1] + (mnist_scenes.DIGIT_SIZE + 1) / 2.0
        return mistakes, np.abs(last - centre).max(axis=1) >= mnist_scenes.DIGIT_SIZE / 2

    def summary(mistakes):
        p, n = float(np.mean(mistakes)), int(np.size(mistakes))
        return {"error": round(p, 5), "standard_error": round((p * (1 - p) / n) ** 0.5, 5), "scenes": n}

    def halves(mistakes):
        half = len(mistakes) // 2
        return {**summary(mistakes), "first_half": summary(mistakes[:half]), "second_half": summary(mistakes[half:])}

    (train, train_labels), validation, test = (
        mnist_scenes.mnist_digits(split, args.data_dir) for split in ("train", "validation", "test"))
    report = {"model": model_name}
    report["validation_selection"] = summary(wrong(*validation, cluttered.SCENE_SEEDS["validation"])[0])
    validation_fresh = [wrong(*validation, seed)[0] for seed in FRESH_SEEDS]
    report["validation_fresh"] = {**summary(np.concatenate(validation_fresh)),
                                  "per_seed": [summary(f)["error"] for f in validation_fresh]}
    reported, off_digit = wrong(*test, cluttered.SCENE_SEEDS["test"])
    report["test_reported"] = halves(reported)
    no_clutter, _ = wrong(*test, cluttered.SCENE_SEEDS["test"], num_fragments=0)
    report["test_no_clutter"] = halves(no_clutter)
    test_fresh = [wrong(*test, seed)[0] for seed in FRESH_SEEDS]
    report["test_fresh"] = {**summary(np.concatenate(test_fresh)), "per_seed": [summary(f)["error"] for f in test_fresh]}
    chosen = np.random.default_rng(0).choice(len(train), size=min(args.train_digits, len(train)), replace=False)
    report["train_fresh"] = summary(wrong(train[chosen], train_labels[chosen], FRESH_SEEDS[0])[0])

    ink = studied_classifier.ink
    edges = studied_classifier.ink_quarter_edges(train)
    validation_quarter = np.digitize(np.tile(ink(validation[0]), len(FRESH_SEEDS)), edges)
    test_quarter = np.digitize(ink(test[0]), edges)
    by_ink = {"quartiles_of_training_digits": [float(e) for e in edges]}
    for q in range(4):  # quarter 1: the thinnest digits
        row = {"validation_fresh": summary(np.concatenate(validation_fresh)[validation_quarter == q])}
        in_quarter = test_quarter == q
        row["test_reported"], row["test_no_clutter"] = summary(reported[in_quarter]), summary(no_clutter[in_quarter])
        if is_draw:
            row["test_last_glimpse_off_digit"] = round(float(off_digit[in_quarter].mean()), 5)
            row["test_reported_last_glimpse_on_digit"] = summary(reported[in_quarter & ~off_digit])
        by_ink[f"quarter_{q + 1}"] = row
    report["by_ink_quarter"] = by_ink
    first, second = np.split(test[0], 2)
    report["mean_ink_per_digit"] = {
        "train": float(ink(train).mean()), "validation": float(ink(validation[0]).mean()),
        "test_first_half": float(ink(first).mean()), "test_second_half": float(ink(second).mean()),
    }
    if args.errors_picture and is_draw:
        write_errors_picture(args.errors_picture, model, test, np.where((test_quarter == 0) & reported)[0][:12])
    print(json.dumps(report, indent=1))


def write_errors_picture(path, model, test, rows):
    """Rows of glimpses 1, 2, 4 and 8 on the reported test scenes of the digits `rows`, in two columns."""
    import numpy as np

    from draw_tf import cluttered, mnist_scenes
    from draw_tf.classifier import glimpse_frames
    from draw_tf.images import write_png

    scenes, _ = mnist_scenes.cluttered_scenes(*test, size=model.config.image_width, seed=cluttered.SCENE_SEEDS["test"])
    strips = [np.concatenate(list(glimpse_frames(model, scenes[i].astype(np.float32) / 255.0, scale=2)[[0, 1, 3, 7]]), axis=1)
              for i in rows]
    strips = [np.pad(strip, ((2, 2), (2, 2), (0, 0)), constant_values=128) for strip in strips]
    half = (len(strips) + 1) // 2
    left, right = np.concatenate(strips[:half]), np.concatenate(strips[half:] or [np.zeros_like(strips[0])])
    right = np.pad(right, ((0, len(left) - len(right)), (0, 0), (0, 0)))
    write_png(path, np.concatenate([left, right], axis=1))


if __name__ == "__main__":
    main()
