"""The fused DRAW step equals the paper's step written with the component layers one by one."""

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw, DrawState, get_preset
from draw_tf.cell import Heads, HeadLayout, StepOutput, kl_to_standard_normal


def learned_start(cell, batch):
    """The initial canvas [b, C, B, A], (h_enc, c_enc) and (h_dec, c_dec) [b, units] from the cell's
    learned initial-state weights, the same for every image (paper section 2.1)."""
    rows = lambda w: tf.tile(w[None], [batch, 1])  # noqa: E731
    canvas = tf.tile(tf.transpose(cell.initial_canvas, [2, 0, 1])[None], [batch, 1, 1, 1])
    return canvas, rows(cell.initial_h_enc), rows(cell.initial_c_enc), rows(cell.initial_h_dec), rows(cell.initial_c_dec)


def reference_step(cell, x, canvas, h_enc, c_enc, h_dec, c_dec, noise):
    """One step of eq. 3-8 with the layers' own calls (no fusion), batch-major. x is None to generate
    (z = noise). Returns a dict of the new state, mu, log_sigma, z and the windows [b, 5] (or None)."""
    window = lambda layer, h: tf.stack(list(layer.window(h)), axis=-1)  # noqa: E731  [b, 5]
    out = dict(h_enc=h_enc, c_enc=c_enc, mu=None, log_sigma=None, z=noise, read_window=None, write_window=None)
    if x is not None:
        x_hat = x - tf.sigmoid(canvas)  # eq. 3
        r = cell.read(x, x_hat, h_dec)  # eq. 4
        if cell.config.read_size:
            out["read_window"] = window(cell.read, h_dec)
        out["h_enc"], (_, out["c_enc"]) = cell.encoder(tf.concat([r, h_dec], -1), [h_enc, c_enc])  # eq. 5
        out["mu"], out["log_sigma"] = tf.split(cell.posterior(out["h_enc"]), 2, axis=-1)
        out["z"] = out["mu"] + tf.exp(out["log_sigma"]) * noise  # eq. 6
    out["h_dec"], (_, out["c_dec"]) = cell.decoder(out["z"], [h_dec, c_dec])  # eq. 7
    out["canvas"] = canvas + cell.write(out["h_dec"])  # eq. 8
    if cell.config.write_size:
        out["write_window"] = window(cell.write, out["h_dec"])
    return out


def reference_unroll(cell, x, noise):
    """Eq. 3-8 step by step with the layers' own calls (no fusion). x [b, C, B, A], noise [T, b, z]."""
    cfg = cell.config
    batch = x.shape[0]
    canvas, h_enc, c_enc, h_dec, c_dec = learned_start(cell, batch)
    kl = tf.zeros([batch])
    for t in range(cfg.time_steps):
        out = reference_step(cell, x, canvas, h_enc, c_enc, h_dec, c_dec, noise[t])
        canvas, h_enc, c_enc, h_dec, c_dec = (out[k] for k in ("canvas", "h_enc", "c_enc", "h_dec", "c_dec"))
        mu, log_sigma = out["mu"], out["log_sigma"]
        kl += tf.reduce_sum(0.5 * (mu**2 + tf.exp(2 * log_sigma) - 1) - log_sigma, -1)
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


ATTENTION = [{}, {"read_size": 0, "write_size": 0}, {"read_size": 0}, {"write_size": 0}]
ATTENTION_IDS = ["attention", "no-attention", "plain-read", "plain-write"]


def _close(a, b, name):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("overrides", ATTENTION, ids=ATTENTION_IDS)
def test_standalone_cell_step(tiny_config, overrides):
    """`DrawCell.call` (batch-major) equals the feature-major `DrawCell.step` it wraps and the
    paper's step written with the layers one by one, for inference and for generation."""
    config = tiny_config.replace(**overrides)
    model = Draw(config)
    _perturb(model)
    cell, batch = model.cell, 3
    rng = np.random.default_rng(3)
    x = tf.constant(rng.uniform(size=(batch, config.channels, config.image_height, config.image_width)), tf.float32)
    noise = tf.constant(rng.normal(size=(batch, config.z_size)), tf.float32)
    normal = lambda *shape: tf.constant(rng.normal(size=shape), tf.float32)  # noqa: E731
    fields = ("canvas", "h_enc", "c_enc", "h_dec", "c_dec")
    t = tf.transpose
    for images in (x, None):
        mode = "inference" if images is not None else "generation"
        fused = cell.fused_weights(generate=images is None)
        # 1. From the learned initial state: `call` on the batch-major state vs `step` on the
        # feature-major one of `initial_state` (whose `proj` `call` recomputes from h_dec).
        new, out = cell(DrawState(*learned_start(cell, batch), proj=None), noise, images)
        ref_state, ref_out = cell.step(fused, cell.initial_state(batch, fused), t(noise), images)
        for name in fields:
            value = getattr(ref_state, name)
            _close(getattr(new, name), value if name == "canvas" else t(value), f"{mode} step: {name}")
        _close(new.proj, t(ref_state.proj), f"{mode} step: proj")
        for name in StepOutput._fields:
            a, b = getattr(out, name), getattr(ref_out, name)
            assert (a is None) == (b is None), name
            if a is not None:
                _close(a, t(b), f"{mode} step: {name}")
        # 2. From a random state (different for every image): `call` vs the paper's equations.
        state = DrawState(
            canvas=normal(*x.shape), h_enc=normal(batch, config.encoder_size), c_enc=normal(batch, config.encoder_size),
            h_dec=normal(batch, config.decoder_size), c_dec=normal(batch, config.decoder_size), proj=None,
        )
        new, out = cell(state, noise, images)
        ref = reference_step(cell, images, *state[:5], noise)
        for name in fields:
            _close(getattr(new, name), ref[name], f"{mode} reference: {name}")
        _close(out.z, ref["z"], f"{mode} reference: z")
        if images is None:
            assert out.mu is None and out.sigma is None and out.read_window is None
            _close(out.z, noise, "generation: z is the prior noise")
            np.testing.assert_array_equal(new.h_enc.numpy(), state.h_enc.numpy())  # the encoder does not run
        else:
            _close(out.mu, ref["mu"], "inference reference: mu")
            _close(out.sigma, tf.exp(ref["log_sigma"]), "inference reference: sigma")
        for name in ("read_window", "write_window"):
            a, b = getattr(out, name), ref[name]
            assert (a is None) == (b is None), f"{mode}: {name}"
            if a is not None:
                _close(a, b, f"{mode} reference: {name}")


@pytest.mark.parametrize("overrides", ATTENTION, ids=ATTENTION_IDS)
def test_head_layout_places_every_linear_map_of_h_dec(tiny_config, overrides):
    """Each head of the fused projection is its component's own linear map of h_dec."""
    config = tiny_config.replace(**overrides)
    model = Draw(config)
    _perturb(model)
    cell = model.cell
    h_dec = tf.constant(np.random.default_rng(4).normal(size=(3, config.decoder_size)), tf.float32)
    expected = {
        "enc": tf.matmul(h_dec, cell.encoder.kernel[cell.read.output_size:]) + cell.encoder.bias,
        "dec": tf.matmul(h_dec, cell.decoder.recurrent_kernel) + cell.decoder.bias,
        "read": cell.read.window.dense(h_dec) if config.read_size else None,
        "write": cell.write.window.dense(h_dec) if config.write_size else None,
        "patch": cell.write.patch(h_dec),
    }
    for generate in (False, True):
        fused = cell.fused_weights(generate=generate)
        layout = fused.layout
        proj = tf.matmul(fused.h_kernel, h_dec, transpose_b=True) + fused.h_bias
        heads = layout.split(proj)
        present = [n for n in HeadLayout.NEXT_STEP + ("write", "patch") if expected[n] is not None]
        if generate:
            present = [n for n in present if n not in ("enc", "read")]
        assert layout.names == tuple(present)
        for name in Heads._fields:
            if name in present:
                _close(tf.transpose(getattr(heads, name)), expected[name], f"generate={generate}: {name}")
            else:
                assert getattr(heads, name) is None and name not in layout
        # The write heads are the projection's last rows, as the backward pass stores them.
        write_params, patch = layout.split_write(layout.write_part(proj, heads))
        _close(tf.transpose(patch), expected["patch"], "split_write: patch")
        assert (write_params is None) == (expected["write"] is None)
        if write_params is not None:
            _close(tf.transpose(write_params), expected["write"], "split_write: write")
        # `concat` puts the next step's heads and the write rows back in place.
        next_step = {name: getattr(heads, name) for name in layout.next_step}
        _close(layout.concat(next_step, layout.write_part(proj, heads)), proj, "concat")


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
