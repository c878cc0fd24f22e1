"""The recurrent DRAW cell: one time step of read, encode, sample, decode and write (paper eq. 3-8).

Weights are stored per component (encoder and decoder `keras.layers.LSTMCell`s, the posterior dense
layer, the read and write layers), so a checkpoint reads like the paper. For speed the step fuses at
run time every linear map that consumes h_dec (the encoder's and decoder's recurrent inputs and the
read and write heads) into one matrix product, built once per call by `fused_weights`.
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
    "FusedWeights", ["enc_kernel", "post_kernel", "post_bias", "dec_kernel", "h_kernel", "h_bias", "splits"]
)


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
                name="read",
            )
        else:
            self.read = attention.PlainRead(h, w, c, name="read")
        if config.write_size:
            self.write = attention.AttentiveWrite(
                config.write_size, h, w, c, initial_attention_bias(config, config.write_size, write=True),
                config.filter_eps,
                name="write",
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
        # the LSTMs' memory cells too, as in jbornschein/draw). Zeros at first: sigmoid(c_0) = 0.5.
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
        """(kernel, bias) pairs of every linear map of h_dec, in the order the step splits them."""
        heads = []
        if not generate:
            read_size = self.read.output_size
            heads.append((self.encoder.kernel[read_size:], self.encoder.bias))
        heads.append((self.decoder.recurrent_kernel, self.decoder.bias))
        if not generate and self.config.read_size:
            heads.append((self.read.window.dense.kernel, self.read.window.dense.bias))
        if self.config.write_size:
            heads.append((self.write.window.dense.kernel, self.write.window.dense.bias))
        heads.append((self.write.patch.kernel, self.write.patch.bias))
        return heads

    def fused_weights(self, generate=False):
        """The step's weights, transposed for feature-major products, built once per call.

        The loop keeps activations feature-major, [units, batch], so that splitting gates and the
        fused h_dec projection along axis 0 is free (aligned sub-buffers) and concatenation is a
        contiguous copy. Gradients flow back through the transposes to each component's weights.
        """
        heads = self._decoder_heads(generate)
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
            h_kernel=tf.transpose(tf.concat([k for k, _ in heads], axis=1)),  # [P, D]
            h_bias=tf.concat([b for _, b in heads], axis=0)[:, None],  # [P, 1]
            splits=[int(k.shape[1]) for k, _ in heads],
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

    # -- one step ------------------------------------------------------------------------------

    def step(self, fused, state, noise, x=None):
        """One time step on a feature-major state; `noise` is [z, batch].

        With images `x` [batch, C, B, A] it runs the inference network and samples
        z_t = mu + sigma * noise from Q(z_t | h_enc); with x=None it generates, z_t = noise ~ N(0, I).
        `fused` must come from `fused_weights(generate=x is None)`. Returned mu, sigma and z are
        [z, batch], the windows [5, batch].
        """
        cfg = self.config
        generate = x is None
        parts = tf.split(state.proj, fused.splits, axis=0)
        h_enc, c_enc, mu, sigma, read_window = state.h_enc, state.c_enc, None, None, None
        if generate:
            dec_part = parts[0]
            z = noise
        else:
            enc_part, dec_part = parts[0], parts[1]
            x_hat = x - tf.sigmoid(state.canvas)
            if cfg.read_size:
                r, read_window = self.read.read_with_params(x, x_hat, parts[2], params_axis=0)
            else:
                r = self.read(x, x_hat)
            gates = tf.matmul(fused.enc_kernel, tf.concat([tf.transpose(r), h_enc], axis=0)) + enc_part
            h_enc, c_enc = lstm_update(gates, c_enc)
            posterior = tf.matmul(fused.post_kernel, h_enc) + fused.post_bias
            mu, log_sigma = tf.split(posterior, 2, axis=0)
            sigma = tf.exp(log_sigma)
            z = mu + sigma * noise
        h_dec, c_dec, proj, write_params, patch = self.decode_step(fused, z, dec_part, state.c_dec)
        delta_canvas, write_window = self.write.write_with_params(write_params, tf.transpose(patch), params_axis=0)
        new_state = DrawState(state.canvas + delta_canvas, h_enc, c_enc, h_dec, c_dec, proj)
        return new_state, StepOutput(mu, sigma, z, window_rows(read_window), window_rows(write_window))

    def decode_step(self, fused, z, dec_part, c_dec):
        """The decoder half of a step (eq. 7 and the linear maps of the write, eq. 8), feature-major.

        z [z, batch], `dec_part` (the decoder's part of the previous fused projection of h_dec) and
        c_dec [D, batch]. Returns (h_dec, c_dec, proj, write_params [5, batch] or None without
        write attention, patch [C*N*N, batch]): the write itself is left to the caller.
        """
        h_dec, c_dec = lstm_update(tf.matmul(fused.dec_kernel, z) + dec_part, c_dec)
        proj = tf.matmul(fused.h_kernel, h_dec) + fused.h_bias
        parts = tf.split(proj, fused.splits, axis=0)
        write_params = parts[-2] if self.config.write_size else None
        return h_dec, c_dec, proj, write_params, parts[-1]

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
