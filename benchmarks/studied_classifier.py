"""Which cluttered-MNIST classifier a benchmark studies: the shipped one, a .keras file, or a
train_classifier run's best epoch so far. Shared by classifier_windows and classifier_errors."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("--data_dir", required=True, help="the MNIST IDX files")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", help="a classifier .keras file (default: draw_tf.pretrained('cluttered_mnist'))")
    which.add_argument("--run", help="a train_classifier model_dir: its best epoch so far (best.weights.h5)")


def load(args, parser, draw_only=False):
    """(a name for the report, the Keras model); with `draw_only`, a run must be a DRAW classifier's."""
    import keras

    import draw_tf
    from draw_tf import cluttered

    if args.run:
        stored, model = cluttered.load_run(args.run)
        if draw_only and stored["kind"] != "draw":
            parser.error(f"--run must be a DRAW classifier's run (it has windows), received a {stored['kind']!r} run")
        return args.run, model
    if args.model:
        return args.model, keras.models.load_model(args.model)
    return "pretrained:cluttered_mnist", draw_tf.pretrained("cluttered_mnist")


def ink(digits):
    """Pixels above 127 (of 255) per digit."""
    return (digits > 127).sum(axis=(1, 2))


def ink_quarter_edges(train_digits):
    """The training digits' ink quartiles: np.digitize(ink(digits), edges) gives each digit's quarter
    (0 the thinnest, 3 the thickest)."""
    import numpy as np

    return np.quantile(ink(train_digits), [0.25, 0.5, 0.75])
