"""Gaussian filterbank attention (paper section 3.2, eq. 19-29) and the non-attentive read/write.

Images inside DRAW are kept channels-first, `[batch, C, H, W]`, so that the filterbank products are
plain batched matrix products; the same filters are applied to every channel. Pixel coordinates are
1-based as in the paper: with g~ = 0 the centre is (A + 1) / 2.
"""

from __future__ import annotations

import collections

import keras
import tensorflow as tf

from draw_tf.config import check_window_rate

# Attention window in pixel units, each field of shape [batch].
Window = collections.namedtuple("Window", ["gx", "gy", "sigma2", "delta", "gamma"])

NUM_WINDOW_PARAMS = 5  # g~x, g~y, log sigma^2, log delta~, log gamma
# Bounds on the linear outputs, far outside anything a trained model uses, so that extreme values
# (a diverging run, an adversarial state) give finite filters and gradients instead of inf * 0:
# sigma^2, delta~ and gamma stay within exp(-15)..exp(15) (3e-7..3.3e6), centres within 1,000 image
# widths of the image.
LOG_BOUND = 15.0
CENTRE_BOUND = 1000.0


def decode_window(params, image_height, image_width, grid_size, axis=-1):
    """Eq. 21-24: maps the linear outputs of W(h_dec), 5 along `axis`, to a `Window` in pixels.

    Each output is first clipped to the bounds above (the identity for every value a trained model
    produces; the gradient is zero beyond them).
    """
    bounds = tf.constant([CENTRE_BOUND] * 2 + [LOG_BOUND] * 3, params.dtype)
    shape = [1] * params.shape.rank
    shape[axis] = NUM_WINDOW_PARAMS
    bounds = tf.reshape(bounds, shape)  # along `axis`, broadcast over the rest: one clip for all five
    params = tf.clip_by_value(params, -bounds, bounds)
    gx_t, gy_t, log_sigma2, log_delta_t, log_gamma = tf.unstack(params, num=NUM_WINDOW_PARAMS, axis=axis)
    gx = (image_width + 1) / 2.0 * (gx_t + 1.0)
    gy = (image_height + 1) / 2.0 * (gy_t + 1.0)
    stride_scale = (max(image_width, image_height) - 1) / max(grid_size - 1, 1)
    delta = stride_scale * tf.exp(log_delta_t)
    return Window(gx=gx, gy=gy, sigma2=tf.exp(log_sigma2), delta=delta, gamma=tf.exp(log_gamma))


def filterbank_matrix(centre, delta, sigma2, grid_size, length, eps=1e-8):
    """Eq. 19-20 and 25-26 along one axis: F [..., N, length], each row normalised to sum 1.

    mu_i = centre + (i - N/2 - 0.5) * delta for i = 1..N and F[i, a] ∝ exp(-(a - mu_i)^2 / (2 sigma^2))
    for pixel a = 1..length. `sigma2` is the variance sigma^2 (not squared again). `centre`,
    `delta` and `sigma2` share their shape [...].
    """
    dtype = centre.dtype
    offsets = tf.range(1, grid_size + 1, dtype=dtype) - grid_size / 2.0 - 0.5
    mu = centre[..., None] + offsets * delta[..., None]  # [..., N]
    pixels = tf.range(1, length + 1, dtype=dtype)  # [length]
    sq_dist = tf.square(pixels - mu[..., None])  # [..., N, length]
    f = tf.exp(sq_dist * (-0.5 / sigma2)[..., None, None])
    return f / (tf.reduce_sum(f, axis=-1, keepdims=True) + eps)


def filterbanks(window, grid_size, image_height, image_width, eps=1e-8):
    """(F_X [batch, N, A], F_Y [batch, N, B]) for a window.

    For square images both axes are computed by one set of ops on a stacked [batch, 2, N, A].
    """
    if image_height == image_width:
        stack = lambda v: tf.stack([v, v], axis=-1)  # noqa: E731
        f = filterbank_matrix(
            tf.stack([window.gx, window.gy], axis=-1), stack(window.delta), stack(window.sigma2),
            grid_size, image_width, eps,
        )
        fx, fy = tf.unstack(f, num=2, axis=-3)
        return fx, fy
    fx = filterbank_matrix(window.gx, window.delta, window.sigma2, grid_size, image_width, eps)
    fy = filterbank_matrix(window.gy, window.delta, window.sigma2, grid_size, image_height, eps)
    return fx, fy


def apply_read(images, fx, fy, gamma):
    """Eq. 27: gamma * F_Y x F_X^T for every channel. images [batch, K, B, A] -> [batch, K, N, N].

    Two plain batched products (no broadcasting, static shapes but the batch, so the gradient also
    compiles under XLA): [b, K*B, A] x F_X^T, then F_Y x [b, B, K*N] with the channels moved next
    to the glimpse columns. gamma is folded into the small F_Y.
    """
    _, k, height, width = images.shape
    n = fx.shape[-2]
    cols = tf.matmul(tf.reshape(images, [-1, k * height, width]), fx, transpose_b=True)  # [b, K*B, N]
    if k > 1:
        cols = tf.transpose(tf.reshape(cols, [-1, k, height, n]), [0, 2, 1, 3])  # [b, B, K, N]
    glimpse = tf.matmul(fy * gamma[:, None, None], tf.reshape(cols, [-1, height, k * n]))  # [b, N, K*N]
    glimpse = tf.reshape(glimpse, [-1, n, k, n])
    return tf.transpose(glimpse, [0, 2, 1, 3]) if k > 1 else tf.reshape(glimpse, [-1, 1, n, n])


def apply_write(patch, fx, fy, gamma):
    """Eq. 29: (1 / gamma) F_Y^T w F_X for every channel. patch [batch, C, N, N] -> [batch, C, B, A]."""
    _, c, n, _ = patch.shape
    height, width = fy.shape[-1], fx.shape[-1]
    rows = tf.matmul(tf.reshape(patch, [-1, c * n, n]), fx)  # [b, C*N, A]
    if c > 1:
        rows = tf.transpose(tf.reshape(rows, [-1, c, n, width]), [0, 2, 1, 3])  # [b, N, C, A]
    image = tf.matmul(fy / gamma[:, None, None], tf.reshape(rows, [-1, n, c * width]), transpose_a=True)
    image = tf.reshape(image, [-1, height, c, width])  # [b, B, C, A]
    return tf.transpose(image, [0, 2, 1, 3]) if c > 1 else tf.reshape(image, [-1, 1, height, width])


def _scaled(initializer, factor):
    """A variance-scaling `initializer` (e.g. glorot_uniform) with its values `factor` times larger."""
    if factor == 1.0:
        return initializer
    if not isinstance(initializer, keras.initializers.VarianceScaling):
        raise ValueError(
            f"a window rate below 1 needs a variance-scaling kernel initializer, received {type(initializer).__name__}."
        )
    return keras.initializers.VarianceScaling(
        initializer.scale * factor**2, initializer.mode, initializer.distribution, seed=initializer.seed
    )


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, received {value!r}.")


@keras.saving.register_keras_serializable(package="draw_tf")
class AttentionWindow(keras.layers.Layer):
    """The linear map of h_dec to the five attention parameters (eq. 21), decoded to pixels.

    With `rate` r < 1 the map is computed as h (r W) + b, with W initialised 1 / r times larger
    than `kernel_initializer` says: the same function at the start, but Adam, which moves every
    weight by about the learning rate per step whatever its gradient, then moves the window r
    times as far per step (see `DrawConfig.window_rate`).
    """

    def __init__(self, grid_size, image_height, image_width, initial_bias=None, kernel_initializer="glorot_uniform", rate=1.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("grid_size", grid_size), ("image_height", image_height), ("image_width", image_width)):
            _check_positive_int(name, value)
        check_window_rate(rate)
        if initial_bias is not None and len(initial_bias) != NUM_WINDOW_PARAMS:
            raise ValueError(
                f"initial_bias must have {NUM_WINDOW_PARAMS} values (g~x, g~y, log sigma^2, log delta~, "
                f"log gamma), received {len(initial_bias)}."
            )
        self.grid_size = grid_size
        self.image_height = image_height
        self.image_width = image_width
        self.initial_bias = None if initial_bias is None else [float(b) for b in initial_bias]
        self.rate = float(rate)
        bias_init = "zeros" if initial_bias is None else keras.initializers.Constant(self.initial_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dense = keras.layers.Dense(
            NUM_WINDOW_PARAMS, kernel_initializer=_scaled(self.kernel_initializer, 1.0 / self.rate),
            bias_initializer=bias_init, name="params",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)

    @property
    def kernel(self):
        """The kernel the map applies, r W [dec, 5] (W itself when rate is 1)."""
        return self.dense.kernel if self.rate == 1.0 else self.rate * self.dense.kernel

    @property
    def bias(self):
        return self.dense.bias

    def params(self, h_dec):
        """The five raw parameters (eq. 21) of h_dec [batch, dec]: [batch, 5]."""
        return tf.matmul(h_dec, self.kernel) + self.bias

    def decode(self, params, axis=-1):
        return decode_window(params, self.image_height, self.image_width, self.grid_size, axis=axis)

    def call(self, h_dec):
        return self.decode(self.params(h_dec))

    def get_config(self):
        config = super().get_config()
        config.update(
            grid_size=self.grid_size,
            image_height=self.image_height,
            image_width=self.image_width,
            initial_bias=self.initial_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            rate=self.rate,
        )
        return config


@keras.saving.register_keras_serializable(package="draw_tf")
class Filterbank(keras.layers.Layer):
    """The filterbank matrices F_X [batch, N, A] and F_Y [batch, N, B] of a `Window` (eq. 25-26)."""

    def __init__(self, grid_size, image_height, image_width, eps=1e-8, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("grid_size", grid_size), ("image_height", image_height), ("image_width", image_width)):
            _check_positive_int(name, value)
        self.grid_size = grid_size
        self.image_height = image_height
        self.image_width = image_width
        self.eps = float(eps)

    def call(self, window):
        return filterbanks(Window(*window), self.grid_size, self.image_height, self.image_width, self.eps)

    def get_config(self):
        config = super().get_config()
        config.update(
            grid_size=self.grid_size, image_height=self.image_height, image_width=self.image_width, eps=self.eps
        )
        return config


class _GridAttention(keras.layers.Layer):
    """What the attentive read and write share: an `AttentionWindow` and a `Filterbank` for an
    N x N grid on B x A images with C channels."""

    def __init__(self, grid_size, image_height, image_width, channels=1, initial_bias=None, eps=1e-8, window_rate=1.0, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("channels", channels)
        self.channels = channels
        self.window = AttentionWindow(grid_size, image_height, image_width, initial_bias, rate=window_rate, name="window")
        self.filterbank = Filterbank(grid_size, image_height, image_width, eps, name="filterbank")

    def get_config(self):
        config = super().get_config()
        config.update(
            grid_size=self.window.grid_size,
            image_height=self.window.image_height,
            image_width=self.window.image_width,
            channels=self.channels,
            initial_bias=self.window.initial_bias,
            eps=self.filterbank.eps,
            window_rate=self.window.rate,
        )
        return config


@keras.saving.register_keras_serializable(package="draw_tf")
class AttentiveRead(_GridAttention):
    """read(x, x_hat, h_dec): N x N glimpses of x and x_hat on every channel (eq. 27).

    Inputs are channels-first images [batch, C, B, A] and h_dec [batch, dec]; the output is the
    flattened [x glimpses, x_hat glimpses], [batch, 2 * C * N * N].
    """

    @property
    def output_size(self):
        return 2 * self.channels * self.window.grid_size**2

    def build(self, x_shape=None, x_hat_shape=None, h_dec_shape=None):
        if h_dec_shape is None:
            raise ValueError("AttentiveRead.build needs h_dec_shape, the shape of the decoder state.")
        self.window.build(h_dec_shape)

    def read_with_params(self, x, x_hat, params, params_axis=-1):
        """The read given the raw attention parameters (5 along `params_axis`); returns
        (glimpses [batch, 2 * C * N * N], window)."""
        window = self.window.decode(params, axis=params_axis)
        fx, fy = self.filterbank(window)
        glimpse = apply_read(tf.concat([x, x_hat], axis=1), fx, fy, window.gamma)
        return tf.reshape(glimpse, [-1, self.output_size]), window

    def call(self, x, x_hat, h_dec):
        return self.read_with_params(x, x_hat, self.window.params(h_dec))[0]


@keras.saving.register_keras_serializable(package="draw_tf")
class AttentiveWrite(_GridAttention):
    """write(h_dec): an N x N patch per channel w = W(h_dec), placed by (1/gamma) F_Y^T w F_X (eq. 28-29).

    Returns the canvas update, channels-first [batch, C, B, A].
    """

    def __init__(self, grid_size, image_height, image_width, channels=1, initial_bias=None, eps=1e-8, window_rate=1.0, **kwargs):
        super().__init__(grid_size, image_height, image_width, channels, initial_bias, eps, window_rate, **kwargs)
        self.patch = keras.layers.Dense(channels * grid_size * grid_size, name="patch")

    def build(self, input_shape):
        self.window.build(input_shape)
        self.patch.build(input_shape)

    def write_with_params(self, params, patch, params_axis=-1):
        """The write given raw attention parameters (5 along `params_axis`) and the patch
        [batch, C*N*N]; returns (canvas update [batch, C, B, A], window)."""
        window = self.window.decode(params, axis=params_axis)
        fx, fy = self.filterbank(window)
        n = self.window.grid_size
        patch = tf.reshape(patch, [-1, self.channels, n, n])
        return apply_write(patch, fx, fy, window.gamma), window

    def call(self, h_dec):
        return self.write_with_params(self.window.params(h_dec), self.patch(h_dec))[0]


class _WholeImage(keras.layers.Layer):
    """What the non-attentive read and write share: the image size they cover."""

    def __init__(self, image_height, image_width, channels=1, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("image_height", image_height), ("image_width", image_width), ("channels", channels)):
            _check_positive_int(name, value)
        self.image_height = image_height
        self.image_width = image_width
        self.channels = channels

    def get_config(self):
        config = super().get_config()
        config.update(image_height=self.image_height, image_width=self.image_width, channels=self.channels)
        return config


@keras.saving.register_keras_serializable(package="draw_tf")
class PlainRead(_WholeImage):
    """read(x, x_hat, h_dec) = [x, x_hat] (eq. 17): the whole image, flattened channels-first."""

    @property
    def output_size(self):
        return 2 * self.channels * self.image_height * self.image_width

    def call(self, x, x_hat, h_dec=None):
        return tf.reshape(tf.concat([x, x_hat], axis=1), [-1, self.output_size])


@keras.saving.register_keras_serializable(package="draw_tf")
class PlainWrite(_WholeImage):
    """write(h_dec) = W(h_dec) (eq. 18): a dense layer to the whole canvas, channels-first."""

    def __init__(self, image_height, image_width, channels=1, **kwargs):
        super().__init__(image_height, image_width, channels, **kwargs)
        self.patch = keras.layers.Dense(channels * image_height * image_width, name="patch")

    def build(self, input_shape):
        self.patch.build(input_shape)

    def write_with_params(self, params, patch, params_axis=-1):
        del params, params_axis
        shape = [-1, self.channels, self.image_height, self.image_width]
        return tf.reshape(patch, shape), None

    def call(self, h_dec):
        return self.write_with_params(None, self.patch(h_dec))[0]
