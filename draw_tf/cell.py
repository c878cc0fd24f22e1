"""The recurrent DRAW cell: one time step of read, encode, sample, decode and write (paper eq. 3-8).

Weights are stored per component (encoder and decoder `keras.layers.LSTMCell`s, the posterior dense
layer, the read and write layers), so a checkpoint reads like the paper. For speed the step fuses at
run time every linear map that consumes h_dec (the encoder's and decoder's recurrent inputs and the
read and write heads) into one matrix product, built once per call by `fused_weights`; its
`HeadLayout` says where each head sits. `DrawCell.step` is five pieces (`read_glimpse`, `encode`,
`sample`, `decode`, `write_delta`) that the hand-written backward pass and generation reuse.
"""

from __future__ import annotations

import collections

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from draw_tf import attention
from draw_tf.config import DrawConfig, initial_attention_bias

tfd = tfp.distributions

# Recurrent state between steps. `proj` caches W_h h_dec + b_h, the fused projection of h_dec.
DrawState = collections.namedtuple("DrawState", ["canvas", "h_enc", "c_enc", "h_dec", "c_dec", "proj"])
# What one step reports besides the new state. Windows hold (gx, gy, sigma^2, delta, gamma), or are
# None without attention.
StepOutput = collections.namedtuple("StepOutput", ["mu", "sigma", "z", "read_window", "write_window"])
FusedWeights = collections.namedtuple(
    "FusedWeights", ["enc_kernel", "post_kernel", "post_bias", "dec_kernel", "h_kernel", "h_bias", "layout"]
)
# What the step's pieces return besides their outputs: the intermediates the hand-written backward
# pass (draw_tf.bptt) stores. All feature-major.
Encoded = collections.namedtuple("Encoded", ["h_enc", "c_enc", "inputs", "gates"])
Sampled = collections.namedtuple("Sampled", ["posterior", "mu", "sigma", "z"])
Decoded = collections.namedtuple("Decoded", ["h_dec", "c_dec", "gates", "proj", "heads"])
# The fused projection of h_dec split into its heads; None for a head this layout does not have.
Heads = collections.namedtuple("Heads", ["enc", "dec", "read", "write", "patch"], defaults=[None] * 5)


class HeadLayout:
    """Where each linear map of h_dec sits in the fused projection proj_t = W_h h_dec_t + b_h.

    The heads, stacked along axis 0 in the order of `Heads`: the encoder's share of its gates
    (`enc`, inference only), the decoder's (`dec`), the read window's 5 parameters (`read`,
    inference with read attention), the write window's 5 parameters (`write`, with write
    attention) and the write patch (`patch`). proj_t's first heads, `next_step` (enc, dec, read),
    feed step t + 1; its last, `write_heads` (write, patch), step t's own write: they are the
    projection's last `write_rows` rows.
    """

    NEXT_STEP = ("enc", "dec", "read")

    def __init__(self, rows):
        """`rows`: {head name: number of rows} for the heads present."""
        unknown = set(rows) - set(Heads._fields)
        if unknown or "dec" not in rows or "patch" not in rows:
            raise ValueError(f"Bad heads {sorted(rows)}; expected some of {Heads._fields}, dec and patch included.")
        self.names = tuple(name for name in Heads._fields if name in rows)
        self.rows = {name: int(rows[name]) for name in self.names}
        self.sizes = [self.rows[name] for name in self.names]
        self.next_step = tuple(name for name in self.names if name in self.NEXT_STEP)
        self.write_heads = tuple(name for name in self.names if name not in self.NEXT_STEP)
        self.write_rows = sum(self.rows[name] for name in self.write_heads)

    def __contains__(self, name):
        return name in self.rows

    def __repr__(self):
        return f"HeadLayout({self.rows})"

    def ordered(self, values):
        """The values of a {head name: value} dict holding every head, in layout order."""
        return [values[name] for name in self.names]

    def split(self, proj):
        """`Heads` of a projection [P, batch] (or of its gradient)."""
        return Heads(**dict(zip(self.names, tf.split(proj, self.sizes, axis=0))))

    def write_part(self, proj, heads):
        """The rows of step t's write, [write_rows, batch], of proj_t, whose `split` is `heads`:
        without write attention the patch head itself, else proj_t's last rows."""
        return heads.patch if self.write_heads == ("patch",) else proj[-self.write_rows:]

    def split_write(self, rows):
        """(write window parameters or None, patch) of `write_part` rows."""
        if "write" in self:
            return rows[: self.rows["write"]], rows[self.rows["write"]:]
        return None, rows

    def concat(self, next_step, write, axis=0):
        """A projection-shaped tensor (e.g. a gradient, or a kernel's rows) from the `next_step`
        heads' parts, {head name: tensor}, and the write heads' rows `write`, along `axis`."""
        return tf.concat([next_step[name] for name in self.next_step] + [write], axis=axis)


def lstm_update(gates, cell_state):
    """LSTM gate arithmetic with Keras's gate order (input, forget, cell, output), feature-major:
    gates [4 * units, batch], cell_state [units, batch]."""
    i, f, g, o = tf.split(gates, 4, axis=0)
    cell_state = tf.sigmoid(f) * cell_state + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(cell_state), cell_state


def window_rows(window):
    """A `Window` as one tensor [5, batch]: gx, gy, sigma^2, delta, gamma."""
    return None if window is None else tf.stack(list(window), axis=0)


@keras.saving.register_keras_serializable(package="draw_tf")
class DrawCell(keras.layers.Layer):
    """One DRAW time step. Images are channels-first [batch, C, B, A]; see `draw_tf.attention`."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = DrawConfig.from_dict(config)
        if not isinstance(config, DrawConfig):
            raise TypeError(f"config must be a DrawConfig or a dict of its fields, received {type(config).__name__}.")
        self.config = config
        h, w, c = config.image_shape
        if config.read_size:
            self.read = attention.AttentiveRead(
                config.read_size, h, w, c, initial_attention_bias(config, config.read_size), config.filter_eps,
                config.window_rate, name="read",
            )
        else:
            self.read = attention.PlainRead(h, w, c, name="read")
        if config.write_size:
            self.write = attention.AttentiveWrite(
                config.write_size, h, w, c, initial_attention_bias(config, config.write_size, write=True),
                config.filter_eps, config.window_rate, name="write",
            )
        else:
            self.write = attention.PlainWrite(h, w, c, name="write")
        self.encoder = keras.layers.LSTMCell(config.encoder_size, name="encoder")
        self.posterior = keras.layers.Dense(2 * config.z_size, name="posterior")  # [mu, log sigma]
        self.decoder = keras.layers.LSTMCell(config.decoder_size, name="decoder")

    def build(self, input_shape=None):
        cfg = self.config
        h_dec_shape = (None, cfg.decoder_size)
        if self.config.read_size:
            self.read.build(h_dec_shape=h_dec_shape)
        self.write.build(h_dec_shape)
        self.encoder.build((None, self.read.output_size + cfg.decoder_size))
        self.posterior.build((None, cfg.encoder_size))
        self.decoder.build((None, cfg.z_size))
        # The state before step 1 (paper section 2.1: c_0, h_enc_0 and h_dec_0 are learned biases;
        # the LSTMs' memory cells too). Zeros at first: sigmoid(c_0) = 0.5.
        h, w, c = cfg.image_shape
        shapes = {
            "initial_canvas": (h, w, c), "initial_h_enc": (cfg.encoder_size,), "initial_c_enc": (cfg.encoder_size,),
            "initial_h_dec": (cfg.decoder_size,), "initial_c_dec": (cfg.decoder_size,),
        }
        for name, shape in shapes.items():
            setattr(self, name, self.add_weight(shape=shape, initializer="zeros", name=name))
        self.built = True

    # -- fused weights -------------------------------------------------------------------------

    def _decoder_heads(self, generate):
        """(kernel, bias) of every linear map of h_dec, by `HeadLayout` head name."""
        heads = {}
        if not generate:
            heads["enc"] = (self.encoder.kernel[self.read.output_size:], self.encoder.bias)
        heads["dec"] = (self.decoder.recurrent_kernel, self.decoder.bias)
        if not generate and self.config.read_size:
            heads["read"] = (self.read.window.kernel, self.read.window.bias)
        if self.config.write_size:
            heads["write"] = (self.write.window.kernel, self.write.window.bias)
        heads["patch"] = (self.write.patch.kernel, self.write.patch.bias)
        return heads

    def fused_weights(self, generate=False):
        """The step's weights, transposed for feature-major products, built once per call.

        The loop keeps activations feature-major, [units, batch], so that splitting gates and the
        fused h_dec projection along axis 0 is free (aligned sub-buffers) and concatenation is a
        contiguous copy. Gradients flow back through the transposes to each component's weights.
        `layout`, the `HeadLayout` of the fused projection, says where each linear map of h_dec sits.
        """
        heads = self._decoder_heads(generate)
        layout = HeadLayout({name: int(kernel.shape[1]) for name, (kernel, _) in heads.items()})
        enc_kernel = post_kernel = post_bias = None
        if not generate:
            post_kernel = tf.transpose(self.posterior.kernel)  # [2z, E]
            post_bias = self.posterior.bias[:, None]  # [2z, 1]
            read_size = self.read.output_size
            enc_kernel = tf.transpose(
                tf.concat([self.encoder.kernel[:read_size], self.encoder.recurrent_kernel], axis=0)
            )  # [4E, read + E]
        return FusedWeights(
            enc_kernel=enc_kernel,
            post_kernel=post_kernel,
            post_bias=post_bias,
            dec_kernel=tf.transpose(self.decoder.kernel),  # [4D, z]
            h_kernel=tf.transpose(tf.concat(layout.ordered({n: k for n, (k, _) in heads.items()}), axis=1)),  # [P, D]
            h_bias=tf.concat(layout.ordered({n: b for n, (_, b) in heads.items()}), axis=0)[:, None],  # [P, 1]
            layout=layout,
        )

    def initial_state(self, batch_size, fused):
        """The learned state before step 1 for `batch_size` images, feature-major (see
        `fused_weights`); canvas [batch, C, B, A]. `proj` is the fused projection of h_dec_0."""
        columns = lambda v: tf.tile(v[:, None], tf.stack([1, batch_size]))  # noqa: E731  [units, batch]
        h_dec = self.initial_h_dec[:, None]
        canvas = tf.transpose(self.initial_canvas, [2, 0, 1])[None]  # [1, C, B, A]
        return DrawState(
            canvas=tf.tile(canvas, tf.stack([batch_size, 1, 1, 1])),
            h_enc=columns(self.initial_h_enc),
            c_enc=columns(self.initial_c_enc),
            h_dec=columns(self.initial_h_dec),
            c_dec=columns(self.initial_c_dec),
            proj=tf.tile(tf.matmul(fused.h_kernel, h_dec) + fused.h_bias, tf.stack([1, batch_size])),
        )

    # -- one step, and its pieces ----------------------------------------------------------------
    # `step` is these five pieces in a row. The hand-written backward pass (draw_tf.bptt) calls the
    # same pieces in its forward loop, keeping their intermediates, and generation calls `decode`.

    def step(self, fused, state, noise, x=None):
        """One time step on a feature-major state; `noise` is [z, batch].

        With images `x` [batch, C, B, A] it runs the inference network and samples
        z_t = mu + sigma * noise from Q(z_t | h_enc); with x=None it generates, z_t = noise ~ N(0, I).
        `fused` must come from `fused_weights(generate=x is None)`. Returned mu, sigma and z are
        [z, batch], the windows [5, batch].
        """
        heads = fused.layout.split(state.proj)  # the previous step's projection of h_dec
        h_enc, c_enc, mu, sigma, read_window = state.h_enc, state.c_enc, None, None, None
        if x is None:
            z = noise
        else:
            glimpse, read_window = self.read_glimpse(x, state.canvas, heads.read)
            h_enc, c_enc, _, _ = self.encode(fused, glimpse, h_enc, c_enc, heads.enc)
            _, mu, sigma, z = self.sample(fused, h_enc, noise)
        decoded = self.decode(fused, z, heads.dec, state.c_dec)
        delta_canvas, write_window = self.write_delta(decoded.heads.write, decoded.heads.patch)
        new_state = DrawState(state.canvas + delta_canvas, h_enc, c_enc, decoded.h_dec, decoded.c_dec, decoded.proj)
        return new_state, StepOutput(mu, sigma, z, window_rows(read_window), window_rows(write_window))

    def read_glimpse(self, x, canvas, read_params):
        """Eq. 3-4: the error image x_hat = x - sigmoid(c_{t-1}) and the read of x and x_hat.

        x and canvas [batch, C, B, A]; `read_params` [5, batch] is the read head of the previous
        projection (None without read attention). Returns (glimpse [batch, read size], window or None).
        """
        x_hat = x - tf.sigmoid(canvas)
        if self.config.read_size:
            return self.read.read_with_params(x, x_hat, read_params, params_axis=0)
        return self.read(x, x_hat), None

    def encode(self, fused, glimpse, h_enc, c_enc, enc_part):
        """Eq. 5: the encoder LSTM on [r_t, h_dec_{t-1}]; h_dec's share is `enc_part`, the encoder
        head of the previous projection. Returns `Encoded(h_enc, c_enc, inputs [read + E, batch]
        (the glimpse and h_enc_{t-1}), gates [4E, batch])`."""
        inputs = tf.concat([tf.transpose(glimpse), h_enc], axis=0)
        gates = tf.matmul(fused.enc_kernel, inputs) + enc_part
        h_enc, c_enc = lstm_update(gates, c_enc)
        return Encoded(h_enc, c_enc, inputs, gates)

    def sample(self, fused, h_enc, noise):
        """Eq. 6: Q(z_t | h_enc) and the sample z_t = mu + sigma * noise. Returns
        `Sampled(posterior [2z, batch] (mu and log sigma), mu, sigma, z)`."""
        posterior = tf.matmul(fused.post_kernel, h_enc) + fused.post_bias
        mu, log_sigma = tf.split(posterior, 2, axis=0)
        sigma = tf.exp(log_sigma)
        return Sampled(posterior, mu, sigma, mu + sigma * noise)

    def decode(self, fused, z, dec_part, c_dec):
        """Eq. 7 and the linear maps of h_dec: the decoder LSTM and the new fused projection.

        z [z, batch], `dec_part` (the decoder head of the previous projection) and c_dec [D, batch].
        Returns `Decoded(h_dec, c_dec, gates [4D, batch], proj, heads)`, `heads` the `Heads` of
        proj: its write window parameters ([5, batch], None without write attention) and patch
        ([C*N*N, batch]) are the write's, made by `write_delta`.
        """
        gates = tf.matmul(fused.dec_kernel, z) + dec_part
        h_dec, c_dec = lstm_update(gates, c_dec)
        proj = tf.matmul(fused.h_kernel, h_dec) + fused.h_bias
        return Decoded(h_dec, c_dec, gates, proj, fused.layout.split(proj))

    def write_delta(self, write_params, patch):
        """Eq. 8: the canvas update [batch, C, B, A] from the write heads (feature-major, as
        `decode` returns them), and the write window (None without write attention)."""
        return self.write.write_with_params(write_params, tf.transpose(patch), params_axis=0)

    def call(self, state, noise, x=None):
        """One standalone step from a batch-major `DrawState` ([batch, units]; `proj` is ignored)
        and noise [batch, z]. Returns the new batch-major state and a batch-major `StepOutput`.
        """
        fused = self.fused_weights(generate=x is None)
        state = DrawState(*state)
        t = tf.transpose
        internal = DrawState(
            state.canvas, t(state.h_enc), t(state.c_enc), t(state.h_dec), t(state.c_dec),
            tf.matmul(fused.h_kernel, state.h_dec, transpose_b=True) + fused.h_bias,
        )
        new, out = self.step(fused, internal, t(noise), x)
        new = DrawState(new.canvas, t(new.h_enc), t(new.c_enc), t(new.h_dec), t(new.c_dec), t(new.proj))
        return new, StepOutput(*[None if v is None else t(v) for v in out])

    def get_config(self):
        base = super().get_config()
        base.update(config=self.config.to_dict())
        return base


def kl_to_standard_normal(mu, sigma, axis=-1):
    """KL(N(mu, sigma^2) || N(0, I)) summed over the latent dimensions (`axis`), with tfp."""
    posterior = tfd.Normal(loc=mu, scale=sigma)
    prior = tfd.Normal(loc=tf.zeros_like(mu), scale=tf.ones_like(sigma))
    return tf.reduce_sum(tfd.kl_divergence(posterior, prior), axis=axis)


def log_density_ratio(z, mu, sigma, axis=-1):
    """log Q(z | x) - log P(z) summed over the latent dimensions (`axis`), for importance weighting."""
    posterior = tfd.Normal(loc=mu, scale=sigma)
    prior = tfd.Normal(loc=tf.zeros_like(mu), scale=tf.ones_like(sigma))
    return tf.reduce_sum(posterior.log_prob(z) - prior.log_prob(z), axis=axis)
