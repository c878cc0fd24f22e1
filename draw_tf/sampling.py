"""What `Draw.generate` and `Draw.reconstruct` compute: the result dicts of a generation from
prior noise and of a reconstruction from a posterior sample, as graphs (the exporters trace them
into their own functions) and as the model's cached tf.functions."""

from __future__ import annotations

import tensorflow as tf

from draw_tf.image_layout import to_chw, to_hwc


def generate_outputs(model, noise, return_sequences=True):
    """`generate`'s graph on loop noise [T, z_size, batch] (no checks, no tf.function)."""
    out = model.unroll(None, noise, record=return_sequences)
    result = {"images": tf.sigmoid(to_hwc(out.canvas))}
    if return_sequences:
        result["canvases"] = tf.sigmoid(out.sequences["canvases"])
        if "write_windows" in out.sequences:
            result["write_windows"] = out.sequences["write_windows"]
    return result


def reconstruct_outputs(model, x, noise, return_sequences=False):
    """`reconstruct`'s graph on float32 images [batch, B, A, C] and loop noise [T, z_size, batch]."""
    out = model.unroll(to_chw(x), noise, record=return_sequences)
    logits = to_hwc(out.canvas)
    result = {"images": tf.sigmoid(logits), "negative_elbo": model.reconstruction_nll(logits, x) + out.kl}
    if return_sequences:
        result.update(out.sequences)
        result["canvases"] = tf.sigmoid(result["canvases"])
    return result


def generate_fn(model, return_sequences):
    """The model's cached tf.function of `generate_outputs`."""
    return model._cached(
        ("generate", return_sequences),
        lambda: tf.function(lambda noise: model.generate_outputs(noise, return_sequences), reduce_retracing=True, autograph=False),
    )


def reconstruct_fn(model, return_sequences):
    """The model's cached tf.function of `reconstruct_outputs`."""
    return model._cached(
        ("reconstruct", return_sequences),
        lambda: tf.function(
            lambda x, noise: model.reconstruct_outputs(x, noise, return_sequences), reduce_retracing=True,
            autograph=False,
        ),
    )
