"""The importance-weighted bound on -log p(x) (Burda et al. 2016) of a DRAW model, in nats."""

from __future__ import annotations

import math

import tensorflow as tf

from draw_tf.checks import check_num_samples
from draw_tf.image_layout import to_chw, to_hwc


def importance_weighted_nll(model, x, num_samples=1, chunk_size=None):
    """-log p(x) estimated with K = `num_samples` posterior samples per image of checked images
    x [batch, B, A, C], drawn in chunks of `chunk_size` (default: all K at once up to 10,000
    images per pass). Returns [batch] nats."""
    check_num_samples(num_samples)
    batch = int(x.shape[0]) if x.shape[0] is not None else None
    if chunk_size is None:
        chunk_size = max(1, min(num_samples, 10000 // max(batch or 1, 1)))
    log_weights = []
    remaining = num_samples
    while remaining > 0:
        k = min(chunk_size, remaining)
        log_weights.append(log_weights_fn(model)(x, tf.constant(k)))
        remaining -= k
    log_weights = tf.concat(log_weights, axis=0)  # [K, batch]
    return -(tf.reduce_logsumexp(log_weights, axis=0) - math.log(num_samples))


def log_weights_fn(model):
    """The model's cached tf.function of (x, k) -> log p(x, z_k) - log Q(z_k | x), [k, batch],
    for k posterior samples z_k per image."""

    def log_weights(x, k):
        batch = tf.shape(x)[0]
        tiled = tf.tile(x, [k, 1, 1, 1])  # [k * batch, ...], sample-major
        out = model.unroll(to_chw(tiled), model.posterior_noise(k * batch), importance=True)
        log_px = -model.reconstruction_nll(to_hwc(out.canvas), tiled)
        return tf.reshape(log_px - out.log_ratio, tf.stack([k, batch]))

    return model._cached("log_weights", lambda: tf.function(log_weights, reduce_retracing=True, autograph=False))
