"""Pictures: the rectangles land where the attention parameters say, files are valid images of
the right size and frame count, plots hold the data, TensorBoard gets the images every epoch."""

import glob
import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from draw_tf import Draw, visualize

RED, GREEN = np.array(visualize.READ_COLOUR), np.array(visualize.WRITE_COLOUR)


def test_window_box_spans_the_filter_centres():
    # N = 3 centres at g - delta, g, g + delta (1-based pixels); pixel a has its centre at a - 0.5
    assert visualize.window_box((10.0, 5.0, 1.0, 2.0, 1.0), 3) == (7.5, 2.5, 11.5, 6.5)
    assert visualize.window_box((10.0, 5.0, 1.0, 2.0, 1.0), 3, scale=4) == (30.0, 10.0, 46.0, 26.0)
    assert visualize.window_box((4.0, 4.0, 1.0, 9.0, 1.0), 1) == (3.5, 3.5, 3.5, 3.5)  # one filter: a point


def test_rectangles_land_where_the_windows_say():
    steps, h, w, scale = 3, 12, 10, 4
    canvases = np.zeros((steps, h, w, 1), np.float32)
    # read: centred on the image ((A + 1) / 2, (B + 1) / 2), 3x3 grid 2 px apart -> 0-based box (3, 4)-(7, 8)
    read = np.tile([5.5, 6.5, 1.0, 2.0, 1.0], (steps, 1))
    # write: a 2x2 grid 1 px apart around (2.5, 3) -> box (1.5, 2)-(2.5, 3)
    write = np.tile([2.5, 3.0, 1.0, 1.0, 1.0], (steps, 1))
    write[2, 0] = 8.5  # moves right at the last step
    frames = visualize.drawing_frames(canvases, read, write, 3, 2, scale)
    assert frames.shape == (steps, h * scale, w * scale, 3) and frames.dtype == np.uint8

    top, left, bottom, right = 16, 12, 31, 27  # (4, 3)-(8, 7) times 4, inclusive outline
    for t in range(steps):
        f = frames[t]
        for edge in (f[top, left : right + 1], f[bottom, left : right + 1], f[top : bottom + 1, left], f[top : bottom + 1, right]):
            assert (edge == RED).all()
        assert (f[top + 4, left + 4] == 0).all()  # inside: the (black) canvas
        assert not (f[top - 1, left : right + 1] == RED).all(axis=-1).any()  # nothing outside
    assert (frames[0][8, 6:10] == GREEN).all()  # write box 0-based (1.5, 2)-(2.5, 3) -> x 6..9, y 8..11
    assert (frames[2][8, 30:34] == GREEN).all() and not (frames[2][8, 6:10] == GREEN).all(axis=-1).any()


def test_canvas_shows_through_and_bad_shapes_are_refused():
    canvases = np.linspace(0, 1, 2 * 4 * 4).reshape(2, 4, 4, 1).astype(np.float32)
    frames = visualize.drawing_frames(canvases, scale=1)
    np.testing.assert_array_equal(frames[..., 0], np.round(canvases[..., 0] * 255))
    with pytest.raises(ValueError, match=r"read_windows must have shape \[T=2, 5\]"):
        visualize.drawing_frames(canvases, read_windows=np.zeros((3, 5)), read_size=2)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        visualize.drawing_frames(np.zeros((2, 4, 4, 2)))


@pytest.mark.parametrize("channels", [1, 3])
def test_drawing_gif_of_samples_and_reconstructions(tiny_config, tmp_path, channels):
    cfg = tiny_config.replace(channels=channels)
    model = Draw(cfg, seed=0)
    path = visualize.save_drawing_gif(model, str(tmp_path / "samples.gif"), num_samples=3, scale=2, columns=3)
    gif = Image.open(path)
    # three tiles of 10x12 px at scale 2 in a row, 2 px of padding around each
    assert gif.n_frames == cfg.time_steps and gif.size == (3 * (2 * 10 + 2) + 2, 2 * 12 + 2 + 2)
    images = (np.random.default_rng(0).random((2, *cfg.image_shape)) > 0.5).astype(np.float32)
    frames = visualize.drawing(model, images, scale=3)
    assert frames.shape[0] == cfg.time_steps
    assert (frames == RED).all(axis=-1).any()  # reconstructions show the read window
    assert (frames == GREEN).all(axis=-1).any()


def test_reconstruction_grid_png(tmp_path):
    images = np.random.default_rng(0).random((5, 6, 4, 1)).astype(np.float32)
    path = visualize.save_reconstruction_grid(str(tmp_path / "rec.png"), images, 1 - images, scale=1)
    png = np.asarray(Image.open(path))
    assert png.shape == (2 * (6 + 1) + 1, 8 * (4 + 1) + 1)  # 10 tiles, 8 per row
    np.testing.assert_array_equal(png[1:7, 1:5], np.round(images[0, ..., 0] * 255))  # input, then its pair
    np.testing.assert_array_equal(png[1:7, 6:10], np.round((1 - images[0, ..., 0]) * 255))


def test_plots_hold_the_data(tmp_path):
    kl = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    fig = visualize.plot_kl_per_step(kl)
    np.testing.assert_allclose([p.get_height() for p in fig.axes[0].patches], [2.0, 3.0, 4.0])
    read = np.array([[5.0, 6.0, 1.0, 2.0, 1.0], [7.0, 8.0, 1.5, 3.0, 1.0]])
    fig = visualize.plot_attention(read_windows=read)
    centre, stride, variance = fig.axes
    np.testing.assert_allclose(centre.lines[0].get_ydata(), [5.0, 7.0])
    np.testing.assert_allclose(centre.lines[1].get_ydata(), [6.0, 8.0])
    np.testing.assert_allclose(stride.lines[0].get_ydata(), [2.0, 3.0])
    np.testing.assert_allclose(variance.lines[0].get_ydata(), [1.0, 1.5])
    png = Image.open(visualize.save_figure(fig, str(tmp_path / "attention.png")))
    assert png.size == (1200, 300)


def test_tensorboard_callback_writes_images_every_epoch(tiny_config, tmp_path):
    cfg = tiny_config.replace(channels=1)
    model = Draw(cfg, seed=0, jit_loss=False)  # the pictures, not XLA, are tested here
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = (np.random.default_rng(0).random((8, *cfg.image_shape)) > 0.5).astype(np.float32)
    callback = visualize.TensorBoardImages(str(tmp_path), num_samples=4, images=x[:2])
    model.fit(x, batch_size=4, epochs=2, verbose=0, callbacks=[callback])
    found = {}
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value))
    assert {step for step, _ in found["samples"]} == {1, 2}
    assert {"drawing", "reconstructions", "epoch_loss", "epoch_kl"} <= set(found)
    png = tf.make_ndarray(found["samples"][0][1].tensor)[2]  # [width, height, encoded image]
    assert tf.io.decode_png(png).shape == (2 * (2 * 12 + 1) + 1, 2 * (2 * 10 + 1) + 1, 1)  # 2x2 tiles at scale 2
    png = Image.open(io.BytesIO(tf.make_ndarray(found["reconstructions"][0][1].tensor)[2]))
    assert png.size == (4 * (2 * 10 + 1) + 1, 2 * 12 + 2)  # 2 pairs in one row
