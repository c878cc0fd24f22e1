"""Input checks of `Draw`'s public methods: images, noise and sample counts, with clear errors."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def check_images(images, image_shape, name="images"):
    """Returns `images` as float32 after checking shape ([batch, *image_shape]), finiteness and
    range [0, 1]. A dict of inputs holds them under 'image'.

    Arrays are checked at once; tensors with graph asserts (the returned tensor depends on them).
    """
    if isinstance(images, dict):
        if "image" not in images:
            raise ValueError(f"A dict of inputs must hold the images under 'image', received keys {sorted(images)}.")
        images = images["image"]
    if not tf.is_tensor(images):
        images = np.asarray(images)
        if images.dtype == object or not (
            np.issubdtype(images.dtype, np.number) or images.dtype == bool
        ):
            raise ValueError(f"{name} must be numeric, received dtype {images.dtype}.")
    shape = tuple(images.shape)
    if len(shape) != 4 or any(d is not None and d != e for d, e in zip(shape[1:], image_shape)):
        raise ValueError(
            f"{name} must have shape [batch, {image_shape[0]}, {image_shape[1]}, {image_shape[2]}] "
            f"(height, width, channels of this model), received shape {list(shape)}."
        )
    if shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, received an empty batch of shape {list(shape)}.")
    if not tf.is_tensor(images):
        values = images.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be finite; received {int(np.sum(~np.isfinite(values)))} NaN or Inf pixels.")
        lo, hi = float(values.min()), float(values.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{name} must have pixel values in [0, 1]; received values in [{lo}, {hi}]. "
                "Scale 8-bit images by 1/255 (binarized MNIST is already 0/1)."
            )
        return tf.convert_to_tensor(values)
    images = tf.cast(images, tf.float32)
    checks = [
        tf.debugging.assert_all_finite(images, f"{name} must be finite; received NaN or Inf pixels."),
        tf.debugging.assert_greater_equal(
            tf.reduce_min(images), 0.0, message=f"{name} must have pixel values in [0, 1]; received a value < 0."
        ),
        tf.debugging.assert_less_equal(
            tf.reduce_max(images), 1.0,
            message=f"{name} must have pixel values in [0, 1]; received a value > 1 "
            "(scale 8-bit images by 1/255; binarized MNIST is already 0/1).",
        ),
    ]
    with tf.control_dependencies([c for c in checks if c is not None]):
        return tf.identity(images)


def check_noise(noise, time_steps, z_size):
    """Checks z noise [batch, T, z_size]; returns it as the loop takes it, [T, z_size, batch]."""
    noise = tf.convert_to_tensor(noise, dtype=tf.float32)
    shape = noise.shape
    expected = (time_steps, z_size)
    if shape.rank != 3 or any(d is not None and d != e for d, e in zip(shape[1:], expected)):
        raise ValueError(
            f"noise must have shape [batch, T={time_steps}, z_size={z_size}], received shape {shape.as_list() if shape.rank is not None else None}."
        )
    return tf.transpose(noise, [1, 2, 0])


def check_noise_rows(loop_noise, images):
    """Checks that loop noise [T, z, batch] holds one column per image of `images` [batch, ...]
    (when both batch sizes are known)."""
    rows, batch = loop_noise.shape[2], images.shape[0]
    if rows is not None and batch is not None and rows != batch:
        raise ValueError(f"noise must hold one row per image: {batch} images, received noise for {rows}.")


def check_num_samples(num_samples):
    """Checks that `num_samples` is a positive integer (not a bool)."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, received {num_samples!r}.")
