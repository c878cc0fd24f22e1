"""The fused DRAW step equals the paper's step written with the component layers one by one."""

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw, DrawCell, DrawState, get_preset
from draw_tf.cell import kl_to_standard_normal


def learned_start(cell, batch):
    """The initial canvas [b, C, B, A], (h_enc, c_enc) and (h_dec, c_dec) [b, units] from the cell's
    learned initial-state weights, the same for every image (paper section 2.1)."""
    rows = lambda w: tf.tile(w[None], [batch, 1])  # noqa: E731
    canvas = tf.tile(tf.transpose(cell.initial_canvas, [2, 0, 1])[None], [batch, 1, 1, 1])
    return canvas, rows(cell.initial_h_enc), rows(cell.initial_c_enc), rows(cell.initial_h_dec), rows(cell.initial_c_dec)


def reference_unroll(cell, x, noise):
    """Eq. 3-8 step by step with the layers' own calls (no fusion). x [b, C, B, A], noise [T, b, z]."""
    cfg = cell.config
    batch = x.shape[0]
    canvas, h_enc, c_enc, h_dec, c_dec = learned_start(cell, batch)
    kl = tf.zeros([batch])
    for t in range(cfg.time_steps):
        x_hat = x - tf.sigmoid(canvas)  # eq. 3
        r = cell.read(x, x_hat, h_dec)  # eq. 4
        h_enc, (_, c_enc) = cell.encoder(tf.concat([r, h_dec], -1), [h_enc, c_enc])  # eq. 5
        mu, log_sigma = tf.split(cell.posterior(h_enc), 2, axis=-1)
        z = mu + tf.exp(log_sigma) * noise[t]  # eq. 6
        kl += tf.reduce_sum(0.5 * (mu**2 + tf.exp(2 * log_sigma) - 1) - log_sigma, -1)
        h_dec, (_, c_dec) = cell.decoder(z, [h_dec, c_dec])  # eq. 7
        canvas = canvas + cell.write(h_dec)  # eq. 8
    return canvas, kl


def reference_generate(cell, noise):
    """Generation step by step: (c_T, [c_1 .. c_T] as [b, T, C, B, A], write windows [b, T, 5] or None)."""
    cfg = cell.config
    canvas, _, _, h_dec, c_dec = learned_start(cell, noise.shape[1])
    canvases, windows = [], []
    for t in range(cfg.time_steps):
        h_dec, (_, c_dec) = cell.decoder(noise[t], [h_dec, c_dec])  # eq. 7
        canvas = canvas + cell.write(h_dec)  # eq. 8
        canvases.append(canvas)
        if cfg.write_size:
            windows.append(tf.stack(list(cell.write.window(h_dec)), axis=-1))
    return canvas, tf.stack(canvases, axis=1), tf.stack(windows, axis=1) if windows else None


def _perturb(model, scale=0.3, seed=0):
    # Random (not initial) weights, so every head's contribution matters (the initial states too).
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(w.numpy() + rng.normal(scale=scale / np.sqrt(max(w.shape[0], 1)), size=w.shape).astype(np.float32))


@pytest.mark.parametrize("overrides", [{}, {"read_size": 0, "write_size": 0}, {"read_size": 0}, {"write_size": 0}])
def test_fused_unroll_matches_reference(tiny_config, overrides):
    config = tiny_config.replace(**overrides)
    model = Draw(config)
    _perturb(model)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.integers(0, 2, size=(5, config.channels, config.image_height, config.image_width)), tf.float32)
    noise = tf.constant(rng.normal(size=(config.time_steps, 5, config.z_size)), tf.float32)

    loop_noise = tf.transpose(noise, [0, 2, 1])  # the loop takes noise feature-major, [T, z, batch]
    out = model.unroll(x, loop_noise)
    canvas, kl = reference_unroll(model.cell, x, noise)
    np.testing.assert_allclose(out.canvas.numpy(), canvas.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.kl.numpy(), kl.numpy(), rtol=1e-4, atol=1e-4)

    # Generation makes the T writes after the decoder loop, in one batch; same canvases and windows.
    canvas, canvases, windows = reference_generate(model.cell, noise)
    generated = model.unroll(None, loop_noise, record=True)
    np.testing.assert_allclose(generated.canvas.numpy(), canvas.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        generated.sequences["canvases"].numpy(), tf.transpose(canvases, [0, 1, 3, 4, 2]).numpy(), rtol=1e-4, atol=1e-4
    )
    if windows is None:
        assert "write_windows" not in generated.sequences
    else:
        np.testing.assert_allclose(generated.sequences["write_windows"].numpy(), windows.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.unroll(None, loop_noise).canvas.numpy(), canvas.numpy(), rtol=1e-4, atol=1e-4)


def test_standalone_cell_step(tiny_config):
    cell = DrawCell(tiny_config)
    cell.build()
    cfg = tiny_config
    batch = 3
    x = tf.random.uniform([batch, cfg.channels, cfg.image_height, cfg.image_width])
    state = DrawState(
        canvas=tf.zeros_like(x), h_enc=tf.zeros([batch, cfg.encoder_size]), c_enc=tf.zeros([batch, cfg.encoder_size]),
        h_dec=tf.zeros([batch, cfg.decoder_size]), c_dec=tf.zeros([batch, cfg.decoder_size]), proj=None,
    )
    noise = tf.random.normal([batch, cfg.z_size])
    new_state, out = cell(state, noise, x)
    assert new_state.canvas.shape == x.shape
    assert out.mu.shape == (batch, cfg.z_size) and out.read_window.shape == (batch, 5)
    assert out.write_window.shape == (batch, 5)
    # The generation step: z is the given prior noise.
    gen_state, gen_out = cell(state, noise)
    np.testing.assert_allclose(gen_out.z.numpy(), noise.numpy())
    assert gen_out.mu is None and gen_state.canvas.shape == x.shape


def test_kl_term_equals_closed_form():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(6, 10)).astype(np.float32)
    log_sigma = rng.normal(scale=0.7, size=(6, 10)).astype(np.float32)
    sigma = np.exp(log_sigma)
    closed = np.sum(0.5 * (mu**2 + sigma**2 - 1.0) - log_sigma, axis=-1)
    np.testing.assert_allclose(kl_to_standard_normal(tf.constant(mu), tf.constant(sigma)).numpy(), closed, rtol=1e-5)


def test_paper_sizes_of_the_mnist_preset():
    model = Draw(get_preset("mnist"))
    shapes = {w.path.split("draw_cell/")[1]: tuple(w.shape) for w in model.weights}
    assert shapes["encoder/kernel"] == (2 * 2 * 2 + 256, 4 * 256)  # [r_t (2 glimpses of 2x2), h_dec]
    assert shapes["encoder/recurrent_kernel"] == (256, 1024)
    assert shapes["posterior/kernel"] == (256, 2 * 100)
    assert shapes["decoder/kernel"] == (100, 1024)
    assert shapes["write/patch/kernel"] == (256, 25)
    assert shapes["read/window/params/kernel"] == (256, 5)
