"""Where a cluttered-MNIST classifier's errors come from: the clutter, the digit's position, or the
digits themselves.

    python -m benchmarks.classifier_errors --data_dir=MNIST_DIR                 # the shipped classifier
    python -m benchmarks.classifier_errors --data_dir=MNIST_DIR --run=RUN        # a run's best epoch so far

The same --scenes validation digits are classified in scenes that differ in one thing at a time
(the digit positions and clutter come from the validation scenes' seed, as
`draw_tf.mnist_scenes.cluttered_scenes` draws them):

- `cluttered`: the validation scenes themselves (8 fragments of 8x8);
- `no_clutter`: the same digits at the same positions, no fragments;
- `centred_no_clutter`: the same digits at the centre of an empty image.

If the error hardly falls without clutter, the clutter is not what limits the classifier; if it
stays even for a centred digit, neither is finding the digit, and the limit is how well the
glimpses and the LSTM recognise a digit they sit on. Also: the error of the cluttered scenes by
how far the digit is from the image's border, by how much fragment ink falls inside the digit's
28x28 box (clutter that overlaps the digit itself, against clutter elsewhere), and by class; for
a DRAW classifier, how often its last glimpse's centre lies inside the digit's 28x28 box, and the
error when it does and when it does not. Prints JSON.
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
    parser.add_argument("--scenes", type=int, default=5000)
    args = parser.parse_args(argv)

    import numpy as np

    from draw_tf import cluttered, mnist_scenes

    model_name, model = studied_classifier.load(args, parser)
    is_draw = hasattr(model, "config")  # a DRAW classifier (it has windows), or the convnet
    size = model.config.image_width if is_draw else model.input_shape[2]
    digits, labels = mnist_scenes.mnist_digits("validation", args.data_dir)
    digits, labels = digits[: args.scenes], labels[: args.scenes]
    seed = cluttered.SCENE_SEEDS["validation"]
    cluttered_x, _ = mnist_scenes.cluttered_scenes(digits, labels, size=size, seed=seed)
    plain_x, _ = mnist_scenes.cluttered_scenes(digits, labels, size=size, num_fragments=0, seed=seed)
    centred_x = np.zeros_like(plain_x)
    corner = (size - mnist_scenes.DIGIT_SIZE) // 2
    centred_x[:, corner:corner + mnist_scenes.DIGIT_SIZE, corner:corner + mnist_scenes.DIGIT_SIZE, 0] = digits
    top_left = mnist_scenes.cluttered_digit_positions(len(digits), size, seed)  # with or without the fragments

    def classify(images):
        """(predicted classes, for a DRAW classifier also its last glimpse's centre (gx, gy) in 1-based pixels)."""
        x = images.astype(np.float32) / 255.0
        outs = [model(x[i:i + 250], return_glimpses=True) if is_draw else {"logits": model(x[i:i + 250])}
                for i in range(0, len(x), 250)]
        classes = np.concatenate([np.asarray(o["logits"]).argmax(-1) for o in outs])
        return classes, np.concatenate([o["windows"][:, -1, :2].numpy() for o in outs]) if is_draw else None

    (cluttered_classes, last), (plain_classes, _), (centred_classes, _) = (
        classify(x) for x in (cluttered_x, plain_x, centred_x))
    wrong = {"cluttered": cluttered_classes != labels, "no_clutter": plain_classes != labels,
             "centred_no_clutter": centred_classes != labels}
    if is_draw:  # where its last glimpse looked
        centre = top_left[:, ::-1] + (mnist_scenes.DIGIT_SIZE + 1) / 2.0
        last_on_digit = np.abs(last - centre).max(axis=1) < mnist_scenes.DIGIT_SIZE / 2
    border = np.minimum(top_left, size - mnist_scenes.DIGIT_SIZE - top_left).min(axis=1)  # px from the digit's box to the nearest border
    bands = [(0, 5), (5, 15), (15, 25), (25, size)]
    box = np.zeros(plain_x.shape[:3], bool)
    for i, (top, left) in enumerate(top_left):
        box[i, top:top + mnist_scenes.DIGIT_SIZE, left:left + mnist_scenes.DIGIT_SIZE] = True
    clutter_ink = (cluttered_x[..., 0] > plain_x[..., 0]) & (cluttered_x[..., 0] > 127)  # the fragments' ink pixels
    ink_on_digit = (clutter_ink & box).sum(axis=(1, 2))  # fragment ink inside the digit's 28x28 box
    ink_groups = {"0": ink_on_digit == 0, "1-19": (ink_on_digit >= 1) & (ink_on_digit < 20), "20+": ink_on_digit >= 20}
    print(json.dumps({
        "model": model_name, "scenes": len(labels),
        "error": {name: round(float(w.mean()), 4) for name, w in wrong.items()},
        "cluttered_error_by_border_distance_px": {
            f"{lo}-{hi}": {"scenes": int(((border >= lo) & (border < hi)).sum()),
                           "error": round(float(wrong["cluttered"][(border >= lo) & (border < hi)].mean()), 4)}
            for lo, hi in bands},
        "cluttered_error_by_fragment_ink_in_the_digit_box_px": {
            name: {"scenes": int(rows.sum()), "error": round(float(wrong["cluttered"][rows].mean()), 4),
                   "error_without_clutter": round(float(wrong["no_clutter"][rows].mean()), 4)}
            for name, rows in ink_groups.items()},
        "cluttered_error_by_class": {int(c): round(float(wrong["cluttered"][labels == c].mean()), 4) for c in range(10)},
        "wrong_in_both_cluttered_and_centred": int((wrong["cluttered"] & wrong["centred_no_clutter"]).sum()),
        **({"last_glimpse_centre_inside_the_digit_box": {
            name: {"share": round(float(last_on_digit[rows].mean()), 4),
                   "share_among_errors": round(float(last_on_digit[rows & wrong["cluttered"]].mean()), 4),
                   "error_when_inside": round(float(wrong["cluttered"][rows & last_on_digit].mean()), 4),
                   "error_when_outside": round(float(wrong["cluttered"][rows & ~last_on_digit].mean()), 4)}
            for name, rows in (("all", np.ones_like(last_on_digit)), ("no_fragment_ink_in_the_box", ink_groups["0"]))}}
           if is_draw else {}),
    }, indent=1))


if __name__ == "__main__":
    main()
