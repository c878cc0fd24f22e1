"""Image layouts: the model's inputs and outputs are [batch, H, W, C]; the cell, its attention and
the hand-written backward pass work on channels-first images, [batch, C, H, W]."""

from __future__ import annotations

import tensorflow as tf


def to_chw(images):
    """[batch, H, W, C] -> [batch, C, H, W]."""
    return tf.transpose(images, [0, 3, 1, 2])


def to_hwc(images):
    """[batch, C, H, W] -> [batch, H, W, C]."""
    return tf.transpose(images, [0, 2, 3, 1])
