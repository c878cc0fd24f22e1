"""The training objective: the negative ELBO's terms in nats, its gradients and their clipping.

Gradients come from the hand-written backpropagation through the T steps (`draw_tf.bptt`) or
from automatic differentiation of the loop (`draw_tf.unroll`); tests/test_bptt.py checks they agree.
"""

from __future__ import annotations

import tensorflow as tf

from draw_tf import bptt, likelihoods
from draw_tf.image_layout import to_chw, to_hwc


def reconstruction_nll(config, log_scale, logits, images):
    """-log D(x | c_T) of `config.likelihood`, summed over pixels and channels: [batch] nats.

    logits: canvas logits c_T [batch, B, A, C]; images: float images [batch, B, A, C] in [0, 1];
    log_scale: the discretized logistic's per-pixel log scale (unused by the Bernoulli).
    """
    if config.likelihood == "discretized_logistic":
        return likelihoods.discretized_logistic_nll(logits, log_scale, images)
    return likelihoods.bernoulli_nll(logits, images)


def elbo_terms(model, x, noise):
    """(reconstruction [batch], kl [batch]) in nats for checked images x [batch, B, A, C] and
    loop noise [T, z, batch]."""
    out = model.unroll(to_chw(x), noise)
    return model.reconstruction_nll(to_hwc(out.canvas), x), out.kl


def mean_terms(model, x, noise):
    """`elbo_terms` averaged over the batch."""
    reconstruction, kl = elbo_terms(model, x, noise)
    return tf.reduce_mean(reconstruction), tf.reduce_mean(kl)


def loss_and_gradients(model, x, noise, replicas):
    """Mean (loss, reconstruction, kl) and the gradients of loss / replicas.

    With `model.jit_loss` (compiled by XLA) the gradients come from the hand-written
    backpropagation through the T steps in `draw_tf.bptt`: equal to automatic differentiation,
    faster, and lighter in memory. Without it, from automatic differentiation of the loop (in a
    plain graph that is the faster of the two).
    """
    if model.jit_loss:
        return bptt.loss_and_gradients(model, x, noise, replicas)
    return autodiff_loss_and_gradients(model, x, noise, replicas)


def autodiff_loss_and_gradients(model, x, noise, replicas):
    """`loss_and_gradients` by automatic differentiation of the loop."""
    with tf.GradientTape() as tape:
        reconstruction, kl = elbo_terms(model, x, noise)
        reconstruction, kl = tf.reduce_mean(reconstruction), tf.reduce_mean(kl)
        loss = reconstruction + kl
        # Gradients are summed over replicas: average the loss over them instead.
        scaled_loss = loss / replicas
    return loss, reconstruction, kl, tape.gradient(scaled_loss, model.trainable_variables)


def clip_gradients(gradients, clip_norm, replicas):
    """Gradients clipped to a global norm of `clip_norm` (a no-op for 0 or None).

    With several replicas the global gradient is clipped, as one device would: the replicas'
    parts are summed first, then each replica gets 1/replicas of the clipped sum (the optimizer
    sums them again).
    """
    if not clip_norm:
        return gradients
    if replicas > 1:
        context = tf.distribute.get_replica_context()
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
        return [g / replicas for g in gradients]
    gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
    return gradients
