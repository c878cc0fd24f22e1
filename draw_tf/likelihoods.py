"""Reconstruction likelihoods D(x | c_T): the paper's Bernoulli and an 8-bit discretized logistic.

Both take the final canvas logits c_T [batch, H, W, C] and images in [0, 1], and return the
negative log-likelihood in nats per image, summed over pixels and channels: [batch]. Both have the
mean image sigmoid(c_T), so sampling, export and pictures are the same for either.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tensorflow_probability as tfp

from draw_tf.config import LIKELIHOODS  # noqa: F401 (the names of the likelihoods here)

tfd = tfp.distributions

# `discretized_logistic` clips the log scale (in [0, 1] units) to these bounds: scales from
# 4.5e-5 (0.012 of an 8-bit step, where a centred bin already holds all the mass) to 7.4 (1,900
# steps, flatter than any useful model). Far beyond them float32 overflows (tfp's log-CDF
# differences are finite up to about log scale 9).
LOG_SCALE_MIN = -10.0
LOG_SCALE_MAX = 2.0


def bernoulli_nll(logits, images):
    """-log D(x | c_T) with D Bernoulli(sigmoid(c_T)), summed over pixels: [batch] nats.

    Grey values in [0, 1] give the cross-entropy the paper uses for colour images (then not a
    normalised likelihood).
    """
    return -tfd.Independent(tfd.Bernoulli(logits=logits, dtype=images.dtype), 3).log_prob(images)


def discretized_logistic(logits, log_scale):
    """The distribution of 8-bit pixel values k in {0, ..., 255}, batched like `logits`.

    P[k] is the mass of a logistic with mean 255 * sigmoid(logits) and scale 255 * exp(log_scale)
    on the bin [k - 1/2, k + 1/2]; the edge bins 0 and 255 take the tails (as in PixelCNN++,
    Salimans et al. 2017). `log_scale` (in [0, 1] units, broadcast against `logits`) is clipped to
    [LOG_SCALE_MIN, LOG_SCALE_MAX]. A `tfd.QuantizedDistribution`: P[Y = k] = P[k - 1 < X <= k]
    for X logistic around the mean - 1/2.
    """
    log_scale = tf.clip_by_value(tf.cast(log_scale, logits.dtype), LOG_SCALE_MIN, LOG_SCALE_MAX)
    logistic = tfd.Logistic(loc=255.0 * tf.sigmoid(logits) - 0.5, scale=255.0 * tf.exp(log_scale))
    return tfd.QuantizedDistribution(logistic, low=0.0, high=255.0)


def discretized_logistic_nll(logits, log_scale, images):
    """-log D(x | c_T) for the 8-bit discretized logistic of `discretized_logistic`: [batch] nats.

    images [batch, H, W, C] in [0, 1] are 8-bit values / 255; the pixel value is k = round(255 x),
    so values between multiples of 1/255 are rounded. `log_scale` broadcasts against the logits
    (the model's is one per pixel and channel, [H, W, C]).
    """
    values = tf.round(255.0 * tf.cast(images, logits.dtype))
    distribution = tfd.Independent(discretized_logistic(logits, log_scale), 3)
    return -distribution.log_prob(values)


def bits_per_dim(nats_per_image, num_dims):
    """Nats per image -> bits per dimension: nats / (num_dims * ln 2), num_dims = H * W * C."""
    return nats_per_image / (num_dims * math.log(2.0))
