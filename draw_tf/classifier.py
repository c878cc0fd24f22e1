"""Classification with DRAW's read attention (the paper's section 4.1, Table 1), and a baseline.

`DrawClassifier` takes T glimpses of N x N through the filterbank read of eq. 27, each placed by a
linear map of the previous LSTM state (eq. 21), feeds them to an LSTM and classifies its last
state with a softmax. `baseline_classifier` is a small convnet that sees the whole image at once.
Both are ordinary Keras models: `compile(loss=SparseCategoricalCrossentropy(from_logits=True))`
and `fit` on (images [batch, H, W, C] in [0, 1], integer labels).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

import keras
import tensorflow as tf

from draw_tf import attention
from draw_tf.config import _check_fields, _check_int, check_window_rate, initial_attention_bias


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Hyper-parameters of `DrawClassifier`.

    Attributes:
      image_height: Image height B in pixels.
      image_width: Image width A in pixels.
      channels: Colour channels; the filters are shared across them.
      time_steps: Number of glimpses T.
      lstm_size: Units of the LSTM.
      read_size: Glimpse size N (N x N per channel).
      num_classes: Classes of the softmax.
      attention_init_span: Fraction of max(A, B) the filter grid spans at the first glimpse (1.0:
        the whole image at low resolution; the window then moves where the LSTM sends it).
      window_rate: How fast training moves the windows, relative to a plain linear map (1.0).
        The window's linear map (eq. 21) is computed as (window_rate * h) W + b with W initialised
        1 / window_rate times larger: the same function at the start, but Adam, which moves every
        weight by about the learning rate per step whatever its gradient, then moves the window
        window_rate times as far. With a plain map (1.0) one step can move a window centre by up to
        learning_rate * lstm_size * (A + 1) / 2 pixels (13 px at 1e-3 on 100x100 with 256 units):
        on cluttered MNIST at 1e-3 the windows then drift off the image within a few hundred steps
        and training stalls; 1/16 keeps them on it (benchmarks/window_dynamics.py).
      classify_every_glimpse: Train the softmax on the LSTM state after every glimpse: the
        training loss is the mean over the T glimpses of the compiled loss of each glimpse's
        logits, so every glimpse, not only the last, gets a gradient toward where the digit can
        be recognised. Predictions (and validation) are always the last glimpse's; the weights
        are the same either way.
    """

    image_height: int = 100
    image_width: int = 100
    channels: int = 1
    time_steps: int = 8
    lstm_size: int = 256
    read_size: int = 12
    num_classes: int = 10
    attention_init_span: float = 1.0
    window_rate: float = 0.0625
    classify_every_glimpse: bool = False

    def __post_init__(self):
        for name in ("image_height", "image_width", "channels", "time_steps", "lstm_size", "read_size"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("num_classes", self.num_classes, minimum=2)
        if self.read_size > min(self.image_height, self.image_width):
            raise ValueError(
                f"read_size must be at most the image size ({self.image_height}x{self.image_width}), "
                f"received {self.read_size}."
            )
        if not (isinstance(self.attention_init_span, (int, float)) and 0 < self.attention_init_span <= 1):
            raise ValueError(f"attention_init_span must be in (0, 1], received {self.attention_init_span!r}.")
        check_window_rate(self.window_rate)
        if not isinstance(self.classify_every_glimpse, bool):
            raise ValueError(f"classify_every_glimpse must be true or false, received {self.classify_every_glimpse!r}.")

    @property
    def image_shape(self):
        return (self.image_height, self.image_width, self.channels)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "ClassifierConfig":
        _check_fields(type(self), changes)
        return dataclasses.replace(self, **changes)


# Paper Table 1 / section 4.1: 100x100 cluttered MNIST, T=8 glimpses of 12x12, LSTM 256.
CLASSIFIER_PRESETS: Dict[str, ClassifierConfig] = {"cluttered_mnist": ClassifierConfig()}


def get_classifier_preset(name, **overrides) -> ClassifierConfig:
    if name not in CLASSIFIER_PRESETS:
        raise ValueError(f"Unknown classifier preset {name!r}; expected one of {sorted(CLASSIFIER_PRESETS)}.")
    config = CLASSIFIER_PRESETS[name]
    return config.replace(**overrides) if overrides else config


def _check_input(images, image_shape):
    shape = tuple(images.shape)
    if len(shape) != 4 or tuple(shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"images must have shape [batch, {image_shape[0]}, {image_shape[1]}, {image_shape[2]}], "
            f"received shape {list(shape)}."
        )


@keras.saving.register_keras_serializable(package="draw_tf")
class DrawClassifier(keras.Model):
    """T attentive glimpses -> LSTM -> softmax logits over `num_classes`.

    Step t: window_t = W(h_{t-1}) (h_0 = 0), r_t = gamma F_Y x F_X^T (N x N per channel),
    (h_t, c_t) = LSTM(r_t, (h_{t-1}, c_{t-1})); logits = V h_T. `call(images, return_glimpses=True)`
    also returns the windows ([batch, T, 5]: gx, gy, sigma^2, delta, gamma in pixels) and the
    glimpses ([batch, T, N, N, C]) for visualisation. `window_shift=(dx, dy)` moves the window
    centres of glimpses 2..T by that many pixels (to measure how much placement matters,
    benchmarks/classifier_windows.py). `call(images, every_glimpse=True)` returns the logits after
    every glimpse, [batch, T, classes] (V h_1, ..., V h_T).
    """

    def __init__(self, config="cluttered_mnist", **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, str):
            config = get_classifier_preset(config)
        elif isinstance(config, dict):
            _check_fields(ClassifierConfig, config)
            config = ClassifierConfig(**config)
        elif not isinstance(config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, a dict or a preset name, received {type(config).__name__}.")
        self.config = cfg = config
        n = cfg.read_size
        self.window = attention.AttentionWindow(
            n, cfg.image_height, cfg.image_width, initial_attention_bias(cfg, n), rate=cfg.window_rate, name="window",
        )
        self.filterbank = attention.Filterbank(n, cfg.image_height, cfg.image_width, name="filterbank")
        self.lstm = keras.layers.LSTMCell(cfg.lstm_size, name="lstm")
        self.head = keras.layers.Dense(cfg.num_classes, name="logits")
        self.build((None, *cfg.image_shape))

    def build(self, input_shape=None):
        cfg = self.config
        self.window.build((None, cfg.lstm_size))
        self.lstm.build((None, cfg.channels * cfg.read_size**2))
        self.head.build((None, cfg.lstm_size))
        self.built = True

    def call(self, images, return_glimpses=False, window_shift=None, every_glimpse=False):
        cfg = self.config
        _check_input(images, cfg.image_shape)
        x = tf.transpose(tf.cast(images, tf.float32), [0, 3, 1, 2])  # [b, C, B, A]
        batch = tf.shape(x)[0]
        h = c = tf.zeros(tf.stack([batch, cfg.lstm_size]))
        windows, glimpses, states = [], [], []
        for t in range(cfg.time_steps):  # T is small: a plain Python loop, unrolled in the graph
            window = self.window(h)
            if window_shift is not None and t > 0:
                window = window._replace(gx=window.gx + float(window_shift[0]), gy=window.gy + float(window_shift[1]))
            fx, fy = self.filterbank(window)
            glimpse = attention.apply_read(x, fx, fy, window.gamma)  # [b, C, N, N]
            h, (h, c) = self.lstm(tf.reshape(glimpse, [batch, -1]), [h, c])
            states.append(h)
            if return_glimpses:
                windows.append(tf.stack(list(window), axis=-1))
                glimpses.append(tf.transpose(glimpse, [0, 2, 3, 1]))
        if every_glimpse:  # [batch, T, classes]
            return tf.stack([self.head(state) for state in states], axis=1)
        logits = self.head(h)
        if not return_glimpses:
            return logits
        return {"logits": logits, "windows": tf.stack(windows, axis=1), "glimpses": tf.stack(glimpses, axis=1)}

    def train_step(self, data):
        """Keras's step, with the loss averaged over every glimpse's logits when
        `classify_every_glimpse` (the metrics stay the last glimpse's)."""
        if not self.config.classify_every_glimpse:
            return super().train_step(data)
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            step_logits = self(images, training=True, every_glimpse=True)
            losses = [
                self.compute_loss(x=images, y=labels, y_pred=step_logits[:, t], sample_weight=sample_weight)
                for t in range(self.config.time_steps)
            ]
            loss = tf.add_n(losses) / len(losses)
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        # compute_loss divides by the replicas of a tf.distribute strategy; like Keras's own step,
        # the loss metric records the global batch's mean
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss * replicas, sample_weight=tf.shape(images)[0])
        return self.compute_metrics(images, labels, step_logits[:, -1], sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        inner = config.get("config")
        if isinstance(inner, dict) and "window_rate" not in inner:  # saved before window_rate: a plain map
            config = {**config, "config": {**inner, "window_rate": 1.0}}
        return cls(**config)


def baseline_classifier(image_shape=(100, 100, 1), num_classes=10, name="convnet_baseline"):
    """A non-attentive baseline: four strided 3x3 convolutions (32, 64, 64, 128 filters), global max
    pooling, a dense layer of 256 and the logits; it sees every pixel of the image at once."""
    layers = [keras.Input(shape=tuple(image_shape))]
    for filters in (32, 64, 64, 128):
        layers.append(keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu"))
    layers += [
        keras.layers.GlobalMaxPooling2D(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(num_classes, name="logits"),
    ]
    return keras.Sequential(layers, name=name)


def glimpse_frames(classifier, image, scale=4):
    """Frames [T, H * scale, W * scale, 3] uint8: `image` [H, W, C] with glimpse t's window (red)."""
    from draw_tf.visualize import drawing_frames

    out = classifier(image[None], return_glimpses=True)
    steps = classifier.config.time_steps
    canvases = tf.repeat(tf.convert_to_tensor(image, tf.float32)[None], steps, axis=0)
    return drawing_frames(
        canvases.numpy(), read_windows=out["windows"][0].numpy(), read_size=classifier.config.read_size, scale=scale
    )
