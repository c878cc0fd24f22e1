"""The importance-weighted bound (Burda et al. 2016) of a pretrained model on a whole split, in
chunks that survive being killed: K = 1000 on the 10,000 binarized-MNIST validation images takes
about 10 hours of one CPU core, so it runs across sessions.

    python -m benchmarks.iwae_bound --output=~/draw-runs/iwae_mnist.jsonl      # resumes; prints JSON

Each chunk of `--chunk_images` images is one JSON line of `--output` (its per-image bound and
one-sample negative ELBO, posterior noise seeded by the chunk's index), rewritten atomically, so a
kill loses at most the chunk under way. The lines name the weights' SHA-256: a file made from
other weights is refused. The summary has the mean over the images done and its standard error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import time


def weights_sha256(name):
    """The SHA-256 of the shipped model `name`'s weights file (`draw_tf.pretrained` checks the name)."""
    from draw_tf import pretrained_models as shipped

    with open(os.path.join(shipped.PRETRAINED_DIR, name, shipped.WEIGHTS_FILE), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_chunks(path, expected):
    """The chunks already in `path`; each must match `expected` (weights, K, chunk size, split)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        chunks = [json.loads(line) for line in f if line.strip()]
    for c in chunks:
        for key, value in expected.items():
            if c[key] != value:
                raise ValueError(f"{path} holds chunks of {key}={c[key]!r}, expected {value!r}; use another --output.")
    return chunks


def write_chunks(path, chunks):
    from draw_tf.files import atomic_path

    with atomic_path(path, suffix=".jsonl") as tmp:
        with open(tmp, "w") as f:
            for c in chunks:
                f.write(json.dumps(c, sort_keys=True) + "\n")


def mean_and_standard_error(values):
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread / math.sqrt(len(values))


def summary(chunks, split_images):
    iwae = [v for c in chunks for v in c["iwae_nll"]]
    elbo = [v for c in chunks for v in c["negative_elbo"]]
    gap = [e - i for e, i in zip(elbo, iwae)]
    out = {"images_done": len(iwae), "split_images": split_images, "complete": len(iwae) == split_images}
    if iwae:
        for key, values in (("iwae_nll", iwae), ("negative_elbo", elbo), ("elbo_minus_iwae", gap)):
            out[key], out[key + "_standard_error"] = mean_and_standard_error(values)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", default="mnist", help="The shipped model (default: mnist).")
    parser.add_argument("--dataset", default="binarized_mnist")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--data_dir", default=os.environ.get("TFDS_DATA_DIR", "../shared/tensorflow_datasets"))
    parser.add_argument("--num_samples", type=int, default=1000, help="K, posterior samples per image.")
    parser.add_argument("--chunk_images", type=int, default=100, help="Images per resumable chunk.")
    parser.add_argument("--max_chunks", type=int, help="Stop after this many new chunks (default: all).")
    parser.add_argument("--output", required=True, help="The JSON-lines file of chunks (resumed when present).")
    args = parser.parse_args(argv)
    output = os.path.expanduser(args.output)

    import tensorflow as tf

    import draw_tf
    from draw_tf import data

    model = draw_tf.pretrained(args.pretrained)
    if not isinstance(model, draw_tf.Draw):
        parser.error(f"--pretrained must name a generator (a Draw model), received the classifier {args.pretrained!r}.")
    expected = {"weights_sha256": weights_sha256(args.pretrained), "pretrained": args.pretrained,
                "dataset": args.dataset, "split": args.split, "num_samples": args.num_samples,
                "chunk_images": args.chunk_images}
    chunks = read_chunks(output, expected)
    done = {c["chunk"] for c in chunks}
    ds = data.make_dataset(args.dataset, args.split, args.chunk_images, args.data_dir, shuffle=False,
                           image_shape=model.config.image_shape)
    split_images, new = 0, 0
    for index, images in enumerate(ds):
        split_images += int(images.shape[0])
        if index in done or (args.max_chunks is not None and new >= args.max_chunks):
            continue
        model.seed_generator.state.assign(tf.constant([index, 0], dtype=model.seed_generator.state.dtype))
        start = time.time()
        negative_elbo = model.reconstruct(images)["negative_elbo"]
        iwae_nll = model.importance_weighted_nll(images, args.num_samples)
        chunks.append(dict(
            expected, chunk=index, first_image=index * args.chunk_images, seconds=round(time.time() - start, 1),
            iwae_nll=[round(float(v), 4) for v in iwae_nll], negative_elbo=[round(float(v), 4) for v in negative_elbo],
        ))
        write_chunks(output, sorted(chunks, key=lambda c: c["chunk"]))
        new += 1
        print(json.dumps(summary(chunks, None)), flush=True)
    result = summary(chunks, split_images)
    result.update(pretrained=args.pretrained, dataset=args.dataset, split=args.split, num_samples=args.num_samples,
                  units="nats per image")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
