"""Image grids as PNG files."""

from __future__ import annotations

import math

import numpy as np

from draw_tf.files import atomic_path


def image_grid(images, columns=None, padding=1, scale=1):
    """Tiles images [n, H, W, C] with values in [0, 1] into one uint8 array [rows*H', cols*W', C'].

    Grey images (C = 1) give a 2-D array. `padding` pixels of white separate the tiles and `scale`
    enlarges every pixel.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have shape [n >= 1, H, W, 1 or 3], received {list(images.shape)}.")
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    tile_h, tile_w = h * scale + padding, w * scale + padding
    grid = np.ones((rows * tile_h + padding, columns * tile_w + padding, c), dtype=np.float32)
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        r, col = divmod(i, columns)
        if scale > 1:
            image = image.repeat(scale, axis=0).repeat(scale, axis=1)
        top, left = padding + r * tile_h, padding + col * tile_w
        grid[top : top + h * scale, left : left + w * scale] = image
    grid = np.round(grid * 255.0).astype(np.uint8)
    return grid[..., 0] if c == 1 else grid


def write_png(path, array):
    """Writes a uint8 array as PNG atomically (a temporary file renamed into place)."""
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.asarray(array)).save(tmp, format="PNG")
    return path


def save_grid(path, images, columns=None, scale=2):
    """`image_grid` written to `path` as PNG; returns the path."""
    return write_png(path, image_grid(images, columns=columns, scale=scale))
