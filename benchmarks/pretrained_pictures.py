"""Redraws the pictures of a shipped model that the README and docs/ show, from `draw_tf.pretrained`.

    python -m benchmarks.pretrained_pictures --data_dir=$TFDS_DATA_DIR     # after shipping mnist

Writes into docs/: `samples_<name>.png` (64 samples, prior noise of --seed), `drawing_<name>.gif`
(8 samples drawn step by step, with the attention windows) and `reconstruction_<name>.gif` (the
first 8 `validation` images of --dataset drawn step by step as the model reconstructs them).
Prints the paths as JSON.
"""

from __future__ import annotations

import argparse
import json
import os

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="mnist", help="a shipped generator (draw_tf.pretrained_models.available())")
    parser.add_argument("--dataset", default="binarized_mnist", help="the dataset of the reconstructions")
    parser.add_argument("--data_dir", default=None, help="its tensorflow-datasets data_dir (or the MNIST IDX files)")
    parser.add_argument("--seed", type=int, default=0, help="the prior noise's seed")
    parser.add_argument("--output_dir", default=DOCS)
    args = parser.parse_args(argv)

    import numpy as np

    import draw_tf
    from draw_tf import data, visualize
    from draw_tf.images import save_grid

    model = draw_tf.pretrained(args.name, seed=args.seed)
    paths = {kind: os.path.join(args.output_dir, f"{kind}_{args.name}.{ext}")
             for kind, ext in (("samples", "png"), ("drawing", "gif"), ("reconstruction", "gif"))}
    samples = model.sample(64, seed=args.seed, return_sequences=False)["images"]
    save_grid(paths["samples"], np.asarray(samples), scale=2)
    visualize.save_drawing_gif(model, paths["drawing"], num_samples=8, seed=args.seed, scale=4, columns=8)
    validation = data.make_dataset(args.dataset, "validation", 8, args.data_dir, shuffle=False,
                                   image_shape=model.config.image_shape)
    images = next(iter(validation)).numpy()
    visualize.save_drawing_gif(model, paths["reconstruction"], images=images, seed=args.seed, scale=4, columns=8)
    print(json.dumps(paths, indent=2))


if __name__ == "__main__":
    main()
