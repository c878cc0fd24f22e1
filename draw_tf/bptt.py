"""Hand-written backpropagation through the T DRAW steps, for fast training.

Automatic differentiation of the T-step `tf.while_loop` works (`Draw.unroll` under a tape) but
stores dozens of intermediates per step, carries zero gradient buffers through the backward loop
and accumulates every weight gradient step by step. Here the forward loop stores only what the
backward pass needs (each step's LSTM pre-activations and input cell states, the products'
inputs, the posterior parameters and the attention inputs), the backward loop propagates
gradients to the activations only, and each fused weight's gradient is one product over all
T * batch columns afterwards, dW = sum_t dY_t X_t^T.

The matrix products, the LSTM derivatives and the reparameterised sample z = mu + sigma * noise
are differentiated by hand; the attention read and write by a small local tape inside the
backward step (recomputed from their stored inputs: a few small ops, no product of the LSTM
sizes); the KL terms (`tfp` `kl_divergence`) of all steps at once after the forward loop, and the
reconstruction term (with the likelihood's own weights, e.g. the discretized logistic's scales) by
a tape around the loss. Tests compare every gradient with automatic differentiation of
`Draw.unroll` (tests/test_bptt.py).

The forward loop is `DrawCell.step` made of the cell's own pieces (`read_glimpse`, `encode`,
`sample`, `decode`, `write_delta`), keeping their intermediates; the backward loop recomputes the
read and write with the same pieces, and finds each head of the fused projection of h_dec with the
cell's `HeadLayout`. Everything is feature-major, [units, batch], as in `DrawCell.step`.
"""

from __future__ import annotations

import tensorflow as tf

from draw_tf.cell import kl_to_standard_normal, lstm_update
from draw_tf.image_layout import to_chw, to_hwc

FUSED_TENSORS = ("enc_kernel", "post_kernel", "post_bias", "dec_kernel", "h_kernel", "h_bias")
BATCH_MAJOR = ("enc_in", "z", "h_dec")  # stored [batch, units]: only read by the weight-gradient products


def _lstm_activations(gates):
    i, f, g, o = tf.split(gates, 4, axis=0)
    return tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)


lstm_forward = lstm_update  # Keras's LSTM (gate order i, f, g, o; sigmoid and tanh): (h, c)


def lstm_backward(gates, c_prev, dh, dc):
    """Gradients of `lstm_forward` from its pre-activations: returns (d gates, d c_prev)."""
    i, f, g, o = _lstm_activations(gates)
    c = f * c_prev + i * g
    tc = tf.tanh(c)
    dc = dc + dh * o * (1.0 - tf.square(tc))
    d_gates = tf.concat(
        [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - tf.square(g)), dh * tc * o * (1.0 - o)],
        axis=0,
    )
    return d_gates, dc * f


def _outer_sum(dy, inputs):
    """sum_t dy_t inputs_t^T from batch-major dy [T, batch, o] and inputs [T, batch, i]: [o, i].

    Stored batch-major, the T * batch columns are contiguous, so this is one matrix product with
    no transposed copy of the (large) operands.
    """
    return tf.matmul(tf.reshape(dy, [-1, dy.shape[-1]]), tf.reshape(inputs, [-1, inputs.shape[-1]]), transpose_a=True)


def loss_and_gradients(model, x, noise, replicas):
    """Mean (loss, reconstruction, kl) of the negative ELBO in nats per image, and the gradients
    of loss / replicas with respect to `model.trainable_variables`.

    x: images [batch, B, A, C] in [0, 1]; noise: posterior noise [T, z, batch].
    """
    cell, cfg = model.cell, model.config
    steps = cfg.time_steps
    x_chw = to_chw(x)
    batch = tf.shape(x_chw)[0]
    with tf.GradientTape() as weight_tape:
        fused = cell.fused_weights()
        start = cell.initial_state(batch, fused)  # the learned c_0, h_enc_0, c_enc_0, c_dec_0 and proj_{-1}
    weights = [getattr(fused, name) for name in FUSED_TENSORS]
    start_tensors = [start.canvas, start.h_enc, start.c_enc, start.c_dec, start.proj]
    # The loops below are differentiated by hand: an enclosing tape must not record through them.
    w = fused._replace(**{name: tf.stop_gradient(getattr(fused, name)) for name in FUSED_TENSORS})
    layout = fused.layout  # where each head sits in the fused projection of h_dec

    def read(canvas, read_params):
        return cell.read_glimpse(x_chw, canvas, read_params)[0]

    def write(write_params, patch):
        return cell.write_delta(write_params, patch)[0]

    # -- forward: `DrawCell.step`'s pieces, storing the backward pass's inputs ----------------
    stored = ("canvas", "enc_in", "enc_gates", "c_enc", "posterior", "z", "dec_gates", "c_dec", "h_dec", "write_in")
    stored += ("read_params",) if "read" in layout else ()

    def forward_body(t, canvas, h_enc, c_enc, c_dec, proj, arrays):
        inputs = layout.split(proj)  # proj_{t-1}'s heads for step t
        encoded = cell.encode(w, read(canvas, inputs.read), h_enc, c_enc, inputs.enc)
        sampled = cell.sample(w, encoded.h_enc, noise[t])
        decoded = cell.decode(w, sampled.z, inputs.dec, c_dec)
        new_canvas = canvas + write(decoded.heads.write, decoded.heads.patch)
        values = dict(canvas=canvas, read_params=inputs.read, enc_in=encoded.inputs, enc_gates=encoded.gates,
                      c_enc=c_enc, posterior=sampled.posterior, z=sampled.z, dec_gates=decoded.gates, c_dec=c_dec,
                      h_dec=decoded.h_dec, write_in=layout.write_part(decoded.proj, decoded.heads))
        arrays = {
            name: arrays[name].write(t, tf.transpose(values[name]) if name in BATCH_MAJOR else values[name])
            for name in stored
        }
        return t + 1, new_canvas, encoded.h_enc, encoded.c_enc, decoded.c_dec, decoded.proj, arrays

    zeros = lambda *shape: tf.zeros(tf.stack(shape))  # noqa: E731
    init = (
        tf.constant(0), *[tf.stop_gradient(v) for v in start_tensors],
        {name: tf.TensorArray(tf.float32, size=steps) for name in stored},
    )
    _, canvas, _, _, _, _, arrays = tf.while_loop(
        lambda t, *_: t < steps, forward_body, init, maximum_iterations=steps
    )
    s = {name: arrays[name].stack() for name in stored}  # [T, ...]

    # -- the loss; its gradient with respect to c_T and to every step's posterior parameters --
    posteriors = s["posterior"]  # [T, 2z, batch]: mu, log sigma
    # The likelihood's weights outside the cell (the discretized logistic's log_scale) get their
    # gradients here, from the loss alone.
    likelihood_weights = [v for v in [model.log_scale] if v is not None and v.trainable]
    with tf.GradientTape() as tape:
        tape.watch([canvas, posteriors])
        mu, log_sigma = tf.split(posteriors, 2, axis=1)
        # KL(Q(z_t | x) || N(0, I)) of all T steps at once, with tfp (eq. 10-11)
        kl = tf.reduce_sum(kl_to_standard_normal(mu, tf.exp(log_sigma), axis=1), axis=0)  # [batch]
        reconstruction = tf.reduce_mean(model.reconstruction_nll(to_hwc(canvas), x))
        kl_mean = tf.reduce_mean(kl)
        loss = reconstruction + kl_mean
        scaled_loss = loss / replicas  # gradients are summed over replicas
    d_canvas, d_kl_posteriors, *d_likelihood = tape.gradient(scaled_loss, [canvas, posteriors] + likelihood_weights)

    # -- backward, t = T-1 .. 0 ------------------------------------------------------------
    # Stored batch-major for the weight-gradient products, by head: the gradient of the fused
    # projection proj_t is the next step's d enc gates, d dec gates and d read window (its
    # `next_step` heads) and this step's write's (its `write_heads`, together "write"). It is not
    # stored whole: its parts are paired with h_dec_t after the loop.
    grads = layout.next_step + ("write", "posterior")

    def backward_body(i, d_canvas, d_h_enc, d_c_enc, d_c_dec, d_next, arrays):
        t = steps - 1 - i
        # write (eq. 29): d canvas_t reaches the write's window parameters and patch.
        write_params, patch = layout.split_write(s["write_in"][t])
        with tf.GradientTape() as local:
            sources = ([write_params] if "write" in layout else []) + [patch]  # in layout order
            local.watch(sources)
            delta = write(write_params, patch)
        d_write = tf.concat(local.gradient(delta, sources, output_gradients=d_canvas), axis=0)
        d_proj = layout.concat(d_next, d_write)  # every use of proj_t
        # decoder LSTM (eq. 7)
        d_h_dec = tf.matmul(w.h_kernel, d_proj, transpose_a=True)
        d_dec_gates, d_c_dec = lstm_backward(s["dec_gates"][t], s["c_dec"][t], d_h_dec, d_c_dec)
        d_z = tf.matmul(w.dec_kernel, d_dec_gates, transpose_a=True)
        # posterior sample z = mu + sigma * noise (eq. 6), plus the KL term's gradient
        log_sigma = s["posterior"][t][cfg.z_size:]
        d_posterior = d_kl_posteriors[t] + tf.concat([d_z, d_z * tf.exp(log_sigma) * noise[t]], axis=0)
        d_h_enc = d_h_enc + tf.matmul(w.post_kernel, d_posterior, transpose_a=True)
        d_enc_gates, d_c_enc = lstm_backward(s["enc_gates"][t], s["c_enc"][t], d_h_enc, d_c_enc)
        d_enc_in = tf.matmul(w.enc_kernel, d_enc_gates, transpose_a=True)
        d_glimpse, d_h_enc = d_enc_in[: -cfg.encoder_size], d_enc_in[-cfg.encoder_size:]
        # read (eq. 3-4): the glimpse depends on c_{t-1} through x_hat and on h_dec_{t-1}'s window.
        canvas_prev = s["canvas"][t]
        read_params = s["read_params"][t] if "read" in layout else None
        with tf.GradientTape() as local:
            sources = [canvas_prev] + ([read_params] if "read" in layout else [])
            local.watch(sources)
            glimpse = read(canvas_prev, read_params)
        d_read = local.gradient(glimpse, sources, output_gradients=tf.transpose(d_glimpse))
        d_canvas = d_canvas + d_read[0]
        d_next = {"enc": d_enc_gates, "dec": d_dec_gates, **({"read": d_read[1]} if "read" in layout else {})}
        values = dict(d_next, write=d_write, posterior=d_posterior)
        arrays = {name: arrays[name].write(t, tf.transpose(values[name])) for name in grads}  # batch-major
        return i + 1, d_canvas, d_h_enc, d_c_enc, d_c_dec, d_next, arrays

    init = (
        tf.constant(0), d_canvas, zeros(cfg.encoder_size, batch), zeros(cfg.encoder_size, batch),
        zeros(cfg.decoder_size, batch),
        {name: zeros(layout.rows[name], batch) for name in layout.next_step},
        {name: tf.TensorArray(tf.float32, size=steps) for name in grads},
    )
    _, d_canvas_0, d_h_enc_0, d_c_enc_0, d_c_dec_0, d_next_0, arrays = tf.while_loop(
        lambda i, *_: i < steps, backward_body, init, maximum_iterations=steps
    )
    # proj_{-1} (the projection of h_dec_0) feeds step 0's encoder, decoder and read, not a write.
    d_proj_0 = layout.concat(d_next_0, zeros(layout.write_rows, batch))
    d_start = [d_canvas_0, d_h_enc_0, d_c_enc_0, d_c_dec_0, d_proj_0]
    d = {name: arrays[name].stack() for name in grads}  # [T, batch, rows]

    # -- weight gradients: one product over all T * batch columns each -----------------------
    h_enc_seq = s["enc_in"][:, :, -cfg.encoder_size:]  # h_enc_{t-1}; h_enc_t is the next step's
    last_h_enc = tf.transpose(lstm_forward(s["enc_gates"][-1], s["c_enc"][-1])[0])
    h_enc_seq = tf.concat([h_enc_seq[1:], last_h_enc[None]], axis=0)  # step t's output h_enc_t, t = 0..T-1
    # proj_{t-1} feeds step t's encoder, decoder and read; proj_t feeds step t's write. Step 0's
    # proj_{-1} is part of the initial state: its share reaches the weights through `weight_tape`.
    h_prev = s["h_dec"][:-1]
    from_next_step = {name: d[name][1:] for name in layout.next_step}
    h_kernel = layout.concat(
        {name: _outer_sum(g, h_prev) for name, g in from_next_step.items()}, _outer_sum(d["write"], s["h_dec"])
    )
    h_bias = layout.concat(
        {name: tf.reduce_sum(g, axis=[0, 1]) for name, g in from_next_step.items()},
        tf.reduce_sum(d["write"], axis=[0, 1]),
    )
    d_fused = {
        "enc_kernel": _outer_sum(d["enc"], s["enc_in"]),
        "post_kernel": _outer_sum(d["posterior"], h_enc_seq),
        "post_bias": tf.reduce_sum(d["posterior"], axis=[0, 1])[:, None],
        "dec_kernel": _outer_sum(d["dec"], s["z"]),
        "h_kernel": h_kernel,
        "h_bias": h_bias[:, None],
    }
    variables = model.trainable_variables
    gradients = weight_tape.gradient(
        weights + start_tensors, variables, output_gradients=[d_fused[name] for name in FUSED_TENSORS] + d_start
    )
    for variable, gradient in zip(likelihood_weights, d_likelihood):  # None from the weight tape until here
        gradients[next(i for i, v in enumerate(variables) if v is variable)] = gradient
    return loss, reconstruction, kl_mean, gradients
