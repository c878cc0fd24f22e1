"""The noise a DRAW model consumes: prior noise for sampling, per-seed noise for serving, and
posterior noise (from the model's seed generator) for training, evaluation and reconstruction."""

from __future__ import annotations

import keras
import tensorflow as tf

from draw_tf.checks import check_num_samples


def prior_noise(config, num_samples, seed=None):
    """Noise z ~ N(0, I) of shape [num_samples, T, z_size]; the same seed gives the same noise."""
    check_num_samples(num_samples)
    shape = (int(num_samples), config.time_steps, config.z_size)
    if seed is None:
        return tf.random.normal(shape)
    return tf.random.stateless_normal(shape, seed=tf.constant([int(seed), 0], dtype=tf.int64))


def noise_from_seeds(config, seeds):
    """Prior noise [batch, T, z_size] with row i drawn from the integer `seeds[i]` alone."""
    seeds = tf.convert_to_tensor(seeds)
    if seeds.shape.rank != 1 or not seeds.dtype.is_integer:
        raise ValueError(f"seeds must be a vector of integers, received {seeds.dtype.name} of shape {seeds.shape}.")
    shape = [config.time_steps, config.z_size]
    return tf.map_fn(
        lambda s: tf.random.stateless_normal(shape, seed=tf.stack([s, tf.zeros_like(s)])),
        tf.cast(seeds, tf.int64),
        fn_output_signature=tf.TensorSpec(shape, tf.float32),
    )


def posterior_noise(config, seed_generator, batch_size):
    """Loop noise [T, z_size, batch_size] ~ N(0, I) from a `keras.random.SeedGenerator`."""
    return keras.random.normal((config.time_steps, config.z_size, batch_size), seed=seed_generator)


def step_noise(config, key, step, batch_size):
    """Loop noise [T, z_size, batch_size] ~ N(0, I) for training step `step`, drawn from the
    integers (key, step) alone: a resumed run draws at every step what the uninterrupted run drew,
    whatever else (validation, callbacks) used the model's seed generator in between."""
    seed = tf.stack([tf.cast(key, tf.int64), tf.cast(step, tf.int64)])
    return tf.random.stateless_normal((config.time_steps, config.z_size, batch_size), seed=seed)


def replica_noise(config, seed_generator, batch_size, step=None, key=None):
    """Posterior noise for this replica's `batch_size` images: from (key, step) with `step_noise`
    when both are given, else from the seed generator. With several replicas each draws the noise
    of the whole global batch (their generator states are equal) and keeps its own rows, so
    training draws the noise a single device would (for equal per-replica batches)."""

    def draw(n):
        if step is not None and key is not None:
            return step_noise(config, key, step, n)
        return posterior_noise(config, seed_generator, n)

    context = tf.distribute.get_replica_context()
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if context is None or replicas == 1:
        return draw(batch_size)
    noise = draw(batch_size * replicas)
    start = context.replica_id_in_sync_group * batch_size
    return noise[:, :, start : start + batch_size]
