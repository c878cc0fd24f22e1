"""Pictures of DRAW drawing: sample and reconstruction grids, animations of the canvas with the
attention windows, plots of the KL and of the attention over time, and a TensorBoard callback.

Animations show sigmoid(c_t) after every step t, the read window of step t in red and the write
window in green. A window is drawn as the square spanned by its N x N filter centres,
g -/+ (N - 1) / 2 * delta around the centre g (1-based pixels, as in `draw_tf.attention`).
"""

from __future__ import annotations

import io

import keras
import numpy as np

from draw_tf.files import atomic_path
from draw_tf.images import image_grid, write_png

READ_COLOUR = (230, 30, 30)  # red
WRITE_COLOUR = (20, 180, 60)  # green


def window_box(window, grid_size, scale=1):
    """(left, top, right, bottom) of a window's filter-centre grid in 0-based image coordinates
    (pixel k covers [k, k + 1)), multiplied by `scale`. `window` is (gx, gy, sigma^2, delta, gamma)."""
    gx, gy, _, delta, _ = (float(v) for v in window)
    half = (grid_size - 1) / 2.0 * delta
    # the centre of 1-based pixel a is at a - 0.5 in continuous 0-based coordinates
    return tuple(scale * v for v in (gx - 0.5 - half, gy - 0.5 - half, gx - 0.5 + half, gy - 0.5 + half))


def _to_rgb(image):
    """[H, W, C] in [0, 1] -> uint8 [H, W, 3] (grey images repeated over the colours)."""
    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if image.shape[-1] != 3:
        raise ValueError(f"Only 1- or 3-channel images can be drawn, received {image.shape[-1]} channels.")
    return np.round(image * 255).astype(np.uint8)


def drawing_frames(canvases, read_windows=None, write_windows=None, read_size=None, write_size=None, scale=4):
    """Frames [T, H * scale, W * scale, 3] uint8 of one image being drawn.

    canvases [T, H, W, C] in [0, 1]; windows [T, 5] (or None) with their grid sizes N.
    """
    from PIL import Image, ImageDraw

    canvases = np.asarray(canvases)
    if canvases.ndim != 4:
        raise ValueError(f"canvases must have shape [T, H, W, C], received {list(canvases.shape)}.")
    steps, h, w, _ = canvases.shape
    boxes = []
    for windows, size, colour, name in (
        (read_windows, read_size, READ_COLOUR, "read"), (write_windows, write_size, WRITE_COLOUR, "write"),
    ):
        if windows is None:
            continue
        windows = np.asarray(windows)
        if windows.shape != (steps, 5) or not size:
            raise ValueError(
                f"{name}_windows must have shape [T={steps}, 5] with a positive {name}_size, "
                f"received shape {list(windows.shape)} and {name}_size={size!r}."
            )
        boxes.append((windows, size, colour))
    frames = []
    for t in range(steps):
        image = Image.fromarray(_to_rgb(canvases[t])).resize((w * scale, h * scale), Image.NEAREST)
        draw = ImageDraw.Draw(image)
        for windows, size, colour in boxes:
            left, top, right, bottom = window_box(windows[t], size, scale)
            # at least one pixel wide, so a 1x1 grid (or a tiny stride) still shows
            right, bottom = max(right, left + 1), max(bottom, top + 1)
            draw.rectangle([round(left), round(top), round(right) - 1, round(bottom) - 1], outline=colour)
        frames.append(np.asarray(image))
    return np.stack(frames)


def tile_frames(frames, columns=None, padding=2):
    """Animations of several images side by side: [n, T, H, W, 3] -> [T, grid H, grid W, 3]."""
    frames = np.asarray(frames)
    if frames.ndim != 5:
        raise ValueError(f"frames must have shape [n, T, H, W, 3], received {list(frames.shape)}.")
    return np.stack(
        [image_grid(frames[:, t] / 255.0, columns=columns, padding=padding) for t in range(frames.shape[1])]
    )


def gif_bytes(frames, duration_ms=60, hold_last_ms=1500):
    """An animated GIF (looping) of frames [T, H, W, 3] uint8, as bytes."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames must have shape [T >= 1, H, W, 3], received {list(frames.shape)}.")
    images = [Image.fromarray(f) for f in frames]
    durations = [duration_ms] * (len(images) - 1) + [hold_last_ms]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return buffer.getvalue()


def png_bytes(array):
    """A uint8 image array ([H, W] grey or [H, W, 3]) as PNG bytes, e.g. for `IPython.display.Image`."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def save_gif(path, frames, duration_ms=60, hold_last_ms=1500):
    """`gif_bytes` written to `path` atomically; returns the path."""
    data = gif_bytes(frames, duration_ms, hold_last_ms)
    with atomic_path(path, suffix=".gif") as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def drawing(model, images=None, num_samples=4, seed=0, scale=4, columns=None):
    """Frames [T, ...] of `model` drawing: reconstructions of `images` (read and write windows) or,
    without images, `num_samples` samples from the prior with `seed` (write windows)."""
    cfg = model.config
    if images is None:
        out = model.sample(num_samples, seed=seed, return_sequences=True)
    else:
        out = model.reconstruct(images, return_sequences=True)
    canvases = np.asarray(out["canvases"])
    read = np.asarray(out["read_windows"]) if "read_windows" in out else None
    write = np.asarray(out["write_windows"]) if "write_windows" in out else None
    frames = [
        drawing_frames(
            canvases[i], None if read is None else read[i], None if write is None else write[i],
            cfg.read_size, cfg.write_size, scale,
        )
        for i in range(canvases.shape[0])
    ]
    return tile_frames(np.stack(frames), columns=columns)


def save_drawing_gif(model, path, images=None, num_samples=4, seed=0, scale=4, columns=None):
    """`drawing` saved as an animated GIF; returns the path."""
    return save_gif(path, drawing(model, images, num_samples, seed, scale, columns))


def reconstruction_grid(images, reconstructions, scale=2):
    """uint8 grid of inputs (odd columns) next to their reconstructions (even columns), 4 pairs per row."""
    images, reconstructions = np.asarray(images), np.asarray(reconstructions)
    if images.shape != reconstructions.shape:
        raise ValueError(f"images {list(images.shape)} and reconstructions {list(reconstructions.shape)} must match.")
    pairs = np.stack([images, reconstructions], axis=1).reshape(-1, *images.shape[1:])
    return image_grid(pairs, columns=min(8, len(pairs)), scale=scale)


def save_reconstruction_grid(path, images, reconstructions, scale=2):
    """`reconstruction_grid` written to `path` as PNG; returns the path."""
    return write_png(path, reconstruction_grid(images, reconstructions, scale))


# -- plots (matplotlib) ---------------------------------------------------------------------------


def plot_kl_per_step(kl, ax=None):
    """Bar chart of KL(Q(z_t|x) || N(0, I)) per step t (nats); kl [T] or [batch, T] (averaged)."""
    import matplotlib.pyplot as plt

    kl = np.asarray(kl, np.float64)
    kl = kl.mean(axis=0) if kl.ndim == 2 else kl
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(1, len(kl) + 1), kl, color="tab:blue")
    ax.set_xlabel("step t")
    ax.set_ylabel("KL (nats)")
    ax.set_title(f"KL per step (total {kl.sum():.1f} nats)")
    return ax.figure


def plot_attention(read_windows=None, write_windows=None):
    """Centre (gx, gy), stride delta and variance sigma^2 of the read and write windows over the
    steps, one panel each; windows [T, 5] (one image). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    for windows, name, colour in ((read_windows, "read", "tab:red"), (write_windows, "write", "tab:green")):
        if windows is None:
            continue
        windows = np.asarray(windows)
        steps = np.arange(1, len(windows) + 1)
        axes[0].plot(steps, windows[:, 0], color=colour, label=f"{name} gx")
        axes[0].plot(steps, windows[:, 1], color=colour, linestyle="--", label=f"{name} gy")
        axes[1].plot(steps, windows[:, 3], color=colour, label=name)
        axes[2].plot(steps, windows[:, 2], color=colour, label=name)
    for ax, title in zip(axes, ("centre (px)", "stride delta (px)", "variance sigma^2 (px^2)")):
        ax.set_title(title)
        ax.set_xlabel("step t")
        if ax.lines:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_figure(fig, path):
    """A matplotlib figure as PNG, atomically; returns the path."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


# -- TensorBoard ----------------------------------------------------------------------------------


class TensorBoardImages(keras.callbacks.Callback):
    """Writes, after every epoch, to TensorBoard: a grid of samples from fixed noise (`samples`),
    inputs next to reconstructions (`reconstructions`, with `images`), the canvas after a few
    steps of one sample (`drawing`), and with `write_scalars` the epoch's logs (loss curves)."""

    def __init__(self, log_dir, num_samples=16, seed=0, images=None, write_scalars=True):
        super().__init__()
        self.log_dir = log_dir
        self.num_samples = num_samples
        self.seed = seed
        self.images = None if images is None else np.asarray(images, np.float32)
        self.write_scalars = write_scalars
        self._writer = None

    def _summary_writer(self):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        out = self.model.sample(self.num_samples, seed=self.seed, return_sequences=True)
        pictures = {"samples": image_grid(np.asarray(out["images"]), scale=2)}
        canvases = np.asarray(out["canvases"][0])  # [T, H, W, C]
        steps = np.unique(np.linspace(0, len(canvases) - 1, min(8, len(canvases))).round().astype(int))
        pictures["drawing"] = image_grid(canvases[steps], columns=len(steps), scale=2)
        if self.images is not None:
            # Fixed posterior noise: reconstructions comparable across epochs, and the model's seed
            # generator (validation's noise) is left alone.
            noise = self.model.prior_noise(len(self.images), seed=self.seed)
            pictures["reconstructions"] = reconstruction_grid(
                self.images, self.model.reconstruct(self.images, noise=noise)["images"]
            )
        with self._summary_writer().as_default(step=epoch + 1):
            for name, picture in pictures.items():
                picture = picture[..., None] if picture.ndim == 2 else picture
                tf.summary.image(name, picture[None])
            if self.write_scalars:
                for name, value in (logs or {}).items():
                    tf.summary.scalar(f"epoch_{name}", float(value))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
