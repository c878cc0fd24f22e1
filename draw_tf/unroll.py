"""The T-step loops of a `DrawCell`: inference (images given) and generation (prior noise only).

Both run the cell's steps in a `tf.while_loop` on feature-major states (see `DrawCell.step`),
starting from its learned `initial_state`. `Draw.unroll` calls them; the hand-written backward
pass (`draw_tf.bptt`) has its own forward loop made of the same step pieces.
"""

from __future__ import annotations

import collections

import tensorflow as tf

from draw_tf.cell import kl_to_standard_normal, log_density_ratio, window_rows

Unrolled = collections.namedtuple("Unrolled", ["canvas", "kl", "log_ratio", "sequences"])


def unroll(cell, x_chw, noise, record=False, importance=False):
    """Runs T steps. x_chw [batch, C, B, A] or None (generate); noise [T, z, batch].

    Returns `Unrolled(canvas logits [batch, C, B, A], kl [batch], log_ratio [batch] or None,
    sequences dict or None)`; see `infer` and `generate`.
    """
    if x_chw is None:
        return generate(cell, noise, record)
    return infer(cell, x_chw, noise, record, importance)


def infer(cell, x_chw, noise, record=False, importance=False):
    """T inference steps on images x_chw [batch, C, B, A] with posterior noise [T, z, batch].

    The loop only collects each step's posterior parameters; the KL terms are computed for all T
    steps at once afterwards (fewer, larger ops). With `importance` also log Q(z|x) - log P(z)
    (`log_ratio`); with `record` the `sequences` of canvases, per-step KL and windows.
    """
    cfg = cell.config
    steps = cfg.time_steps
    fused = cell.fused_weights()
    batch = tf.shape(noise)[2]
    state = cell.initial_state(batch, fused)
    names = ["mu", "sigma"] + (["z"] if importance else [])
    if record:
        names.append("canvases")
        if cfg.read_size:
            names.append("read_windows")
        if cfg.write_size:
            names.append("write_windows")
    # Element shapes are given (not inferred from the first write): the TFLite converter's lowering
    # of tensor lists needs them, and mixes up the lists of a loop without them.
    b, (height, width, channels) = noise.shape[2], cfg.image_shape
    element_shapes = {
        "mu": [cfg.z_size, b], "sigma": [cfg.z_size, b], "z": [cfg.z_size, b],
        "canvases": [b, channels, height, width], "read_windows": [5, b], "write_windows": [5, b],
    }
    arrays = {name: tf.TensorArray(tf.float32, size=steps, element_shape=element_shapes[name]) for name in names}

    def body(t, state, arrays):
        state, out = cell.step(fused, state, noise[t], x_chw)
        values = {
            "mu": out.mu, "sigma": out.sigma, "z": out.z, "canvases": state.canvas,
            "read_windows": out.read_window, "write_windows": out.write_window,
        }
        return t + 1, state, {name: array.write(t, values[name]) for name, array in arrays.items()}

    _, state, arrays = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), state, arrays), maximum_iterations=steps
    )
    stacked = {name: array.stack() for name, array in arrays.items()}  # [T, ...]
    log_ratio = sequences = None
    kl_steps = kl_to_standard_normal(stacked["mu"], stacked["sigma"], axis=1)  # [T, batch]
    kl = tf.reduce_sum(kl_steps, axis=0)
    if importance:
        log_ratio = log_density_ratio(stacked["z"], stacked["mu"], stacked["sigma"], axis=1)
        log_ratio = tf.reduce_sum(log_ratio, axis=0)
    if record:
        sequences = {"canvases": tf.transpose(stacked["canvases"], [1, 0, 3, 4, 2])}  # [batch, T, B, A, C]
        sequences["kl"] = tf.transpose(kl_steps)
        for name in ("read_windows", "write_windows"):
            if name in stacked:
                sequences[name] = tf.transpose(stacked[name], [2, 0, 1])  # [T, 5, b] -> [b, T, 5]
    return Unrolled(canvas=state.canvas, kl=kl, log_ratio=log_ratio, sequences=sequences)


def generate(cell, noise, record=False):
    """T generation steps from prior noise [T, z, batch]: the decoder runs the T steps
    (generation never reads the canvas) and the T writes are made afterwards in one batch, c_t
    their cumulative sum. `kl` and `log_ratio` are None; `sequences` (with `record`) holds the
    canvases and, with write attention, the write windows.

    Same result as stepping the cell (tests/test_cell.py), with fewer and larger ops; the loop
    stores only each step's write parameters, so the TFLite sampler exported from it copies
    30 numbers per step instead of a whole canvas.
    """
    cfg = cell.config
    steps = noise.shape[0]
    fused = cell.fused_weights(generate=True)
    layout = fused.layout
    batch = tf.shape(noise)[2]
    b = noise.shape[2]
    patch_size = layout.rows["patch"]
    names = ["patch"] + (["write_params"] if cfg.write_size else [])
    element_shapes = {"patch": [patch_size, b], "write_params": [5, b]}
    arrays = {name: tf.TensorArray(tf.float32, size=steps, element_shape=element_shapes[name]) for name in names}

    def body(t, h_dec, c_dec, proj, arrays):
        decoded = cell.decode(fused, noise[t], layout.split(proj).dec, c_dec)
        values = {"patch": decoded.heads.patch, "write_params": decoded.heads.write}
        arrays = {name: array.write(t, values[name]) for name, array in arrays.items()}
        return t + 1, decoded.h_dec, decoded.c_dec, decoded.proj, arrays

    start = cell.initial_state(batch, fused)
    *_, arrays = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), start.h_dec, start.c_dec, start.proj, arrays),
        maximum_iterations=steps,
    )
    # [T, P, batch] -> [T * batch, P] (step-major rows) and [T, 5, batch] -> [5, T * batch]
    patches = tf.reshape(tf.transpose(arrays["patch"].stack(), [0, 2, 1]), [-1, patch_size])
    params = None
    if cfg.write_size:
        params = tf.reshape(tf.transpose(arrays["write_params"].stack(), [1, 0, 2]), [5, -1])
    # All T writes in one batch: the write layer's own batch-major call (`DrawCell.write_delta`
    # takes one step's feature-major heads).
    deltas, window = cell.write.write_with_params(params, patches, params_axis=0)  # [T * batch, C, B, A]
    deltas = tf.reshape(deltas, tf.concat([[steps, batch], tf.shape(deltas)[1:]], axis=0))
    if not record:
        return Unrolled(canvas=start.canvas + tf.reduce_sum(deltas, axis=0), kl=None, log_ratio=None, sequences=None)
    canvases = start.canvas + tf.cumsum(deltas, axis=0)  # c_t = c_0 + the first t writes, [T, batch, C, B, A]
    sequences = {"canvases": tf.transpose(canvases, [1, 0, 3, 4, 2])}  # [batch, T, B, A, C]
    if window is not None:
        rows = tf.reshape(window_rows(window), tf.stack([5, steps, batch]))
        sequences["write_windows"] = tf.transpose(rows, [2, 1, 0])  # [batch, T, 5]
    return Unrolled(canvas=canvases[-1], kl=None, log_ratio=None, sequences=sequences)
