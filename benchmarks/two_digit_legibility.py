"""Do the two-digit model's samples show two recognisable digits? A number instead of a look.

    python -m benchmarks.two_digit_legibility --data_dir=MNIST_DIR --model=draw_tf/assets/pretrained/mnist_two_digit
    python -m benchmarks.two_digit_legibility --data_dir=MNIST_DIR --run=RUN --checkpoint=RUN/checkpoints/ckpt-N

Each image (a 60x60 sample, or a real validation scene for reference) is cut into its pieces of
ink: pixels above 0.5, grouped 8-connected after a one-pixel dilation (so a stroke broken by a gap
of up to 2 pixels stays one piece), pieces under `--min_pixels` dropped. An image is *legible* when it has
exactly two pieces and a digit classifier is at least `--confidence` sure of each, each piece
prepared as MNIST prepares its digits (its box scaled to fit 20x20, then its centre of mass
moved to where MNIST's digits have theirs, pixel (14, 14) of 28x28) and made binary again. The
classifier is `draw_tf.classifier.baseline_classifier` at 28x28, trained on the
55,000 training digits (its accuracy on the 5,000 validation digits is reported) and cached at
`--classifier_cache`. Pieces and training digits are binary (ink above half), so blur does not count.

Real scenes do not all pass (their digits may touch or overlap, as the paper's do), so the number to
read is the samples' rate against the real scenes'. Prints JSON: for each set, the legible share
(with its binomial standard error), the share with each count of pieces, and the classifier's
confidence on the two-piece images.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

DIGIT_BOX = 20  # MNIST fits each digit's box into 20x20 ...
DIGIT_SIZE = 28  # ... and moves its centre of mass to pixel (14, 14) of 28x28 (the validation
CENTRE_OF_MASS = 14.0  # digits' mean is (13.99, 14.02), spread 0.3)


def ink_pieces(image, min_pixels):
    """The pieces of ink of a grey image [H, W] in [0, 1]: a list of [H, W] binary images (1 on the
    piece's pixels above 0.5), largest first. Binary, so that a sample's blur (it is a mean image)
    and a real digit's sharp edge are judged by shape alone."""
    from scipy import ndimage

    ink = image > 0.5
    labels, count = ndimage.label(ndimage.binary_dilation(ink), structure=np.ones((3, 3)))
    pieces = []
    for k in range(1, count + 1):
        piece = ink & (labels == k)
        if np.count_nonzero(piece) >= min_pixels:
            pieces.append(piece.astype(np.float32))
    return sorted(pieces, key=lambda p: -np.count_nonzero(p))


def as_mnist_digit(piece):
    """A binary piece [H, W] as MNIST presents a digit: its bounding box scaled to fit 20x20
    (aspect kept) and made binary again (above 0.5), placed in 28x28 with its centre of mass
    within half a pixel of pixel (14, 14). float32 [28, 28]."""
    from scipy import ndimage

    from draw_tf.data import resize

    rows, cols = np.nonzero(piece > 0)
    box = piece[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = DIGIT_BOX / max(box.shape)
    size = [max(1, round(box.shape[0] * scale)), max(1, round(box.shape[1] * scale))]
    small = resize(box[..., None], size).numpy()[..., 0] > 0.5
    digit = np.zeros((DIGIT_SIZE, DIGIT_SIZE), np.float32)
    top, left = (DIGIT_SIZE - size[0]) // 2, (DIGIT_SIZE - size[1]) // 2
    digit[top : top + size[0], left : left + size[1]] = small
    cy, cx = ndimage.center_of_mass(digit)
    # A whole-pixel move keeps it binary (the centre of mass lands within half a pixel).
    return ndimage.shift(digit, (round(CENTRE_OF_MASS - cy), round(CENTRE_OF_MASS - cx)), order=0)


def binary(digits):
    """MNIST digits (uint8 [n, 28, 28]) as the pieces are: 1 above grey level 127. float32 [n, 28, 28, 1]."""
    return (np.asarray(digits)[..., None] > 127).astype(np.float32)


def digit_classifier(data_dir, cache, epochs=2, seed=0):
    """The 28x28 baseline convnet trained on the training digits (loaded from `cache` when there),
    and its accuracy on the validation digits."""
    import keras

    from draw_tf import mnist_scenes
    from draw_tf.classifier import baseline_classifier

    keras.utils.set_random_seed(seed)
    model = baseline_classifier((DIGIT_SIZE, DIGIT_SIZE, 1), name="mnist_digits")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    val_digits, val_labels = mnist_scenes.mnist_digits("validation", data_dir)
    if cache and os.path.exists(cache):
        model.load_weights(cache)
    else:
        digits, labels = mnist_scenes.mnist_digits("train", data_dir)
        model.fit(binary(digits), labels, batch_size=100, epochs=epochs, verbose=2)
        if cache:
            os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
            model.save_weights(cache)
    _, accuracy = model.evaluate(binary(val_digits), val_labels, batch_size=500, verbose=0)
    return model, float(accuracy)


def legibility(images, classifier, min_pixels, confidence):
    """The legibility summary of grey images [n, H, W, 1] in [0, 1]."""
    import tensorflow as tf

    counts, two_piece_digits = [], []
    for image in images:
        pieces = ink_pieces(image[..., 0], min_pixels)
        counts.append(len(pieces))
        if len(pieces) == 2:
            two_piece_digits += [as_mnist_digit(p) for p in pieces]
    n = len(images)
    if two_piece_digits:
        probs = tf.nn.softmax(classifier.predict(np.stack(two_piece_digits)[..., None], batch_size=500, verbose=0))
        sure = np.max(probs, axis=1).reshape(-1, 2)
    else:
        sure = np.zeros((0, 2))
    legible = int(np.sum(np.min(sure, axis=1) >= confidence))
    share = legible / n
    return {
        "images": n,
        "legible": share,
        "legible_standard_error": math.sqrt(share * (1 - share) / n),
        "pieces": {str(k): counts.count(k) / n for k in sorted(set(counts))},
        "two_pieces_median_confidence_of_the_less_sure": float(np.median(np.min(sure, axis=1))) if len(sure) else None,
    }


def load_generator(args):
    """The Draw model to sample: a shipped-style folder (--model), or a run's checkpoint (--run with
    --checkpoint, its --weights; without --checkpoint the run's latest, its average if it keeps one)."""
    from draw_tf import pretrained_models, training
    from draw_tf.model import Draw
    from draw_tf.weight_average import load_checkpoint_weights

    if args.model:
        return pretrained_models._load(args.model)
    if args.checkpoint:
        config = training.read_model_config(args.run)
        if config is None:
            raise ValueError(f"--run: expected a draw-tf model_dir with a config.json, received {args.run!r}.")
        model = Draw(config)
        load_checkpoint_weights(model, args.checkpoint, args.weights)
        return model
    return training.load_model(args.run)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="the MNIST IDX files (training and test)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a folder written by `pretrained_models ship` (config.json + weights)")
    source.add_argument("--run", help="a two-digit run's model_dir (its latest checkpoint, or --checkpoint)")
    parser.add_argument("--checkpoint", help="with --run: a checkpoint prefix (e.g. an archived ckpt-N)")
    parser.add_argument("--weights", choices=("average", "raw"), default="average", help="with --checkpoint")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the samples' prior noise")
    parser.add_argument("--min_pixels", type=int, default=20)
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--classifier_cache", default=os.path.expanduser("~/.cache/draw_tf/mnist_binary_digits.weights.h5"))
    args = parser.parse_args(argv)
    if args.checkpoint and not args.run:
        parser.error("--checkpoint: expected --run too (for the run's config.json), received none.")
    if args.num_samples < 1:
        parser.error(f"--num_samples: expected at least 1, received {args.num_samples}.")
    if not 0 < args.confidence <= 1:
        parser.error(f"--confidence: expected a probability in (0, 1], received {args.confidence}.")

    from draw_tf import mnist_scenes

    classifier, accuracy = digit_classifier(args.data_dir, args.classifier_cache)
    # The grey scenes (the means of the binarized ones the model trains on, as its samples are means).
    digits, _ = mnist_scenes.mnist_digits("validation", args.data_dir)
    real = mnist_scenes.two_digit_scenes(digits, args.num_samples, seed=args.seed) / 255.0
    summary = {
        "digit_classifier_validation_accuracy": accuracy,
        "min_pixels": args.min_pixels,
        "confidence": args.confidence,
        "real_validation_scenes": legibility(real, classifier, args.min_pixels, args.confidence),
    }
    if args.model or args.run:
        generator = load_generator(args)
        samples = generator.sample(args.num_samples, seed=args.seed, return_sequences=False)["images"].numpy()
        summary["samples"] = legibility(samples, classifier, args.min_pixels, args.confidence)
        summary["model"] = args.checkpoint or args.model or args.run
        if args.checkpoint:
            summary["weights"] = args.weights
        real_share = summary["real_validation_scenes"]["legible"]
        summary["legible_relative_to_real"] = summary["samples"]["legible"] / real_share if real_share else None
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
