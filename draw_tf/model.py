"""The DRAW `keras.Model`: the T-step loop, the variational loss in nats, sampling and likelihoods."""

from __future__ import annotations

import collections
import math

import keras
import numpy as np
import tensorflow as tf

from draw_tf import bptt, likelihoods
from draw_tf.cell import DrawCell, kl_to_standard_normal, log_density_ratio, window_rows
from draw_tf.config import DrawConfig, get_preset
from draw_tf.image_layout import to_chw as _to_chw, to_hwc as _to_hwc  # also their former home
from draw_tf.likelihoods import bernoulli_nll  # noqa: F401 (its former home: draw_tf.model.bernoulli_nll)

Unrolled = collections.namedtuple("Unrolled", ["canvas", "kl", "log_ratio", "sequences"])


@keras.saving.register_keras_serializable(package="draw_tf")
class Draw(keras.Model):
    """DRAW (Gregor et al. 2015): a sequential variational auto-encoder with filterbank attention.

    Images are [batch, height, width, channels] with values in [0, 1]: binary for the Bernoulli
    likelihood (grey values give the paper's cross-entropy), 8-bit values / 255 for the discretized
    logistic (`config.likelihood`). `fit`/`evaluate` report `loss` (negative ELBO),
    `reconstruction` and `kl`, all in nats per image (`bits_per_dim` converts).

    Args:
      config: a `DrawConfig`, a dict of its fields, or the name of a preset (`draw_tf.PRESETS`).
      seed: seed for the posterior noise used by `fit`, `evaluate` and `call`.
      jit_loss: compile the T-step forward and backward pass of `train_step` and `test_step` with
        XLA (the input checks and the optimizer step stay outside), with the gradients from the
        hand-written backpropagation of `draw_tf.bptt`. On a 2-core CPU this makes a training step
        about a quarter faster than the plain graph (and it peaks 0.1-0.2 GB higher). Set False
        to run the loop as a plain graph differentiated automatically, e.g. for debugging.
        Independent of `compile(jit_compile=...)`.
    """

    def __init__(self, config="mnist", seed=None, jit_loss=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, str):
            config = get_preset(config)
        elif isinstance(config, dict):
            config = DrawConfig.from_dict(config)
        elif not isinstance(config, DrawConfig):
            raise TypeError(
                f"config must be a DrawConfig, a dict of its fields or a preset name, received {type(config).__name__}."
            )
        self.config = config
        self.seed = seed
        self.jit_loss = bool(jit_loss)
        self.cell = DrawCell(config, name="draw_cell")
        self.log_scale = None  # the discretized logistic's per-pixel log scale, made in `build`
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.build((None, *config.image_shape))

    @classmethod
    def from_preset(cls, name, seed=None, jit_loss=True, **overrides):
        """`Draw(get_preset(name, **overrides), seed, jit_loss)`."""
        return cls(get_preset(name, **overrides), seed=seed, jit_loss=jit_loss)

    def build(self, input_shape=None):
        if not self.cell.built:
            self.cell.build()
        if self.config.likelihood == "discretized_logistic" and self.log_scale is None:
            # Only for this likelihood, so that Bernoulli models keep their weights and checkpoints.
            self.log_scale = self.add_weight(
                shape=self.config.image_shape, initializer=keras.initializers.Constant(math.log(0.1)),
                name="log_scale",
            )  # log of the scale in [0, 1] units: 0.1 is 25.5 of 255 steps
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    # -- input checks --------------------------------------------------------------------------

    def check_images(self, images, name="images"):
        """Returns `images` as float32 after checking shape, finiteness and range [0, 1].

        For the discretized logistic likelihood they are 8-bit values / 255 (the likelihood rounds
        other values to the nearest multiple of 1/255).
        """
        expected = self.config.image_shape
        if isinstance(images, dict):
            if "image" not in images:
                raise ValueError(f"A dict of inputs must hold the images under 'image', received keys {sorted(images)}.")
            images = images["image"]
        if not tf.is_tensor(images):
            images = np.asarray(images)
            if images.dtype == object or not (
                np.issubdtype(images.dtype, np.number) or images.dtype == bool
            ):
                raise ValueError(f"{name} must be numeric, received dtype {images.dtype}.")
        shape = tuple(images.shape)
        if len(shape) != 4 or any(d is not None and d != e for d, e in zip(shape[1:], expected)):
            raise ValueError(
                f"{name} must have shape [batch, {expected[0]}, {expected[1]}, {expected[2]}] "
                f"(height, width, channels of this model), received shape {list(shape)}."
            )
        if shape[0] == 0:
            raise ValueError(f"{name} must hold at least one image, received an empty batch of shape {list(shape)}.")
        if not tf.is_tensor(images):
            values = images.astype(np.float32)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{name} must be finite; received {int(np.sum(~np.isfinite(values)))} NaN or Inf pixels.")
            lo, hi = float(values.min()), float(values.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"{name} must have pixel values in [0, 1]; received values in [{lo}, {hi}]. "
                    "Scale 8-bit images by 1/255 (binarized MNIST is already 0/1)."
                )
            return tf.convert_to_tensor(values)
        images = tf.cast(images, tf.float32)
        checks = [
            tf.debugging.assert_all_finite(images, f"{name} must be finite; received NaN or Inf pixels."),
            tf.debugging.assert_greater_equal(
                tf.reduce_min(images), 0.0, message=f"{name} must have pixel values in [0, 1]; received a value < 0."
            ),
            tf.debugging.assert_less_equal(
                tf.reduce_max(images), 1.0,
                message=f"{name} must have pixel values in [0, 1]; received a value > 1 "
                "(scale 8-bit images by 1/255; binarized MNIST is already 0/1).",
            ),
        ]
        with tf.control_dependencies([c for c in checks if c is not None]):
            return tf.identity(images)

    def check_noise(self, noise):
        """Checks z noise [batch, T, z_size]; returns it as the loop takes it, [T, z_size, batch]."""
        cfg = self.config
        noise = tf.convert_to_tensor(noise, dtype=tf.float32)
        shape = noise.shape
        expected = (cfg.time_steps, cfg.z_size)
        if shape.rank != 3 or any(d is not None and d != e for d, e in zip(shape[1:], expected)):
            raise ValueError(
                f"noise must have shape [batch, T={cfg.time_steps}, z_size={cfg.z_size}], received shape {shape.as_list() if shape.rank is not None else None}."
            )
        return tf.transpose(noise, [1, 2, 0])

    # -- the T-step loop -----------------------------------------------------------------------

    def unroll(self, x_chw, noise, record=False, importance=False):
        """Runs T steps. x_chw [batch, C, B, A] or None (generate); noise [T, z, batch].

        Returns `Unrolled(canvas logits [batch, C, B, A], kl [batch], log_ratio [batch] or None,
        sequences dict or None)`. The loop only collects each step's posterior parameters; the KL
        terms are computed for all T steps at once afterwards (fewer, larger ops).
        """
        if x_chw is None:
            return self._unroll_generate(noise, record)
        cfg = self.config
        steps = cfg.time_steps
        fused = self.cell.fused_weights()
        batch = tf.shape(noise)[2]
        state = self.cell.initial_state(batch, fused)
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
            state, out = self.cell.step(fused, state, noise[t], x_chw)
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

    def _unroll_generate(self, noise, record=False):
        """`unroll` without images: the decoder runs the T steps (generation never reads the
        canvas) and the T writes are made afterwards in one batch, c_t their cumulative sum.

        Same result as stepping the cell (tests/test_cell.py), with fewer and larger ops; the loop
        stores only each step's write parameters, so the TFLite sampler exported from it copies
        30 numbers per step instead of a whole canvas.
        """
        cfg = self.config
        steps = noise.shape[0]
        fused = self.cell.fused_weights(generate=True)
        layout = fused.layout
        batch = tf.shape(noise)[2]
        b = noise.shape[2]
        write = self.cell.write
        patch_size = layout.rows["patch"]
        names = ["patch"] + (["write_params"] if cfg.write_size else [])
        element_shapes = {"patch": [patch_size, b], "write_params": [5, b]}
        arrays = {name: tf.TensorArray(tf.float32, size=steps, element_shape=element_shapes[name]) for name in names}

        def body(t, h_dec, c_dec, proj, arrays):
            decoded = self.cell.decode(fused, noise[t], layout.split(proj).dec, c_dec)
            values = {"patch": decoded.heads.patch, "write_params": decoded.heads.write}
            arrays = {name: array.write(t, values[name]) for name, array in arrays.items()}
            return t + 1, decoded.h_dec, decoded.c_dec, decoded.proj, arrays

        start = self.cell.initial_state(batch, fused)
        *_, arrays = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), start.h_dec, start.c_dec, start.proj, arrays),
            maximum_iterations=steps,
        )
        # [T, P, batch] -> [T * batch, P] (step-major rows) and [T, 5, batch] -> [5, T * batch]
        patches = tf.reshape(tf.transpose(arrays["patch"].stack(), [0, 2, 1]), [-1, patch_size])
        params = None
        if cfg.write_size:
            params = tf.reshape(tf.transpose(arrays["write_params"].stack(), [1, 0, 2]), [5, -1])
        deltas, window = write.write_with_params(params, patches, params_axis=0)  # [T * batch, C, B, A]
        deltas = tf.reshape(deltas, tf.concat([[steps, batch], tf.shape(deltas)[1:]], axis=0))
        if not record:
            return Unrolled(canvas=start.canvas + tf.reduce_sum(deltas, axis=0), kl=None, log_ratio=None, sequences=None)
        canvases = start.canvas + tf.cumsum(deltas, axis=0)  # c_t = c_0 + the first t writes, [T, batch, C, B, A]
        sequences = {"canvases": tf.transpose(canvases, [1, 0, 3, 4, 2])}  # [batch, T, B, A, C]
        if window is not None:
            rows = tf.reshape(window_rows(window), tf.stack([5, steps, batch]))
            sequences["write_windows"] = tf.transpose(rows, [2, 1, 0])  # [batch, T, 5]
        return Unrolled(canvas=canvases[-1], kl=None, log_ratio=None, sequences=sequences)

    def posterior_noise(self, batch_size):
        cfg = self.config
        return keras.random.normal((cfg.time_steps, cfg.z_size, batch_size), seed=self.seed_generator)

    # -- Keras API -----------------------------------------------------------------------------

    def call(self, inputs, training=False, return_sequences=False):
        """Encodes and redraws `inputs`; returns the final canvas logits c_T [batch, B, A, C].

        With `return_sequences=True` returns a dict: `logits`, `canvases` (the logits c_t of every
        step, [batch, T, B, A, C]), `kl` ([batch, T] nats), and with attention `read_windows` and
        `write_windows` ([batch, T, 5]: gx, gy, sigma^2, delta, gamma in pixels).
        """
        x = self.check_images(inputs)
        out = self.unroll(_to_chw(x), self.posterior_noise(tf.shape(x)[0]), record=return_sequences)
        logits = _to_hwc(out.canvas)
        if not return_sequences:
            return logits
        return dict(logits=logits, **out.sequences)

    def negative_elbo_terms(self, images, noise=None):
        """(reconstruction [batch], kl [batch]) in nats for images [batch, B, A, C] in [0, 1]."""
        x = self.check_images(images)
        if noise is None:
            noise = self.posterior_noise(tf.shape(x)[0])
        return self._elbo_terms(x, noise)

    def _elbo_terms(self, x, noise):
        out = self.unroll(_to_chw(x), noise)
        return self.reconstruction_nll(_to_hwc(out.canvas), x), out.kl

    def reconstruction_nll(self, logits, images):
        """-log D(x | c_T) of `config.likelihood`, summed over pixels and channels: [batch] nats.

        logits: canvas logits c_T [batch, B, A, C]; images: float images [batch, B, A, C] in [0, 1].
        """
        if self.config.likelihood == "discretized_logistic":
            return likelihoods.discretized_logistic_nll(logits, self.log_scale, images)
        return likelihoods.bernoulli_nll(logits, images)

    @property
    def num_dims(self):
        """Dimensions of one image, H * W * C: the divisor of bits per dimension."""
        return int(np.prod(self.config.image_shape))

    def bits_per_dim(self, nats_per_image):
        """Nats per image (e.g. a negative ELBO) in bits per dimension, nats / (H * W * C * ln 2)."""
        return likelihoods.bits_per_dim(nats_per_image, self.num_dims)

    @staticmethod
    def _images_from(data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        return data

    def _update_metrics(self, loss, reconstruction, kl):
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        results = {m.name: m.result() for m in self.metrics}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3 reduces multi-worker logs with reduce(MEAN, axis=0), which fails on scalars
            # (tensorflow/tensorflow#72388): give each value an axis of length 1.
            results = {name: value[None] for name, value in results.items()}
        return results

    def _loss_and_gradients(self, x, noise, replicas):
        """Mean (loss, reconstruction, kl) and the gradients of loss / replicas.

        With `jit_loss` (compiled by XLA) the gradients come from the hand-written backpropagation
        through the T steps in `draw_tf.bptt`: equal to automatic differentiation, faster, and
        lighter in memory. Without it, from automatic differentiation of `unroll` (in a plain
        graph that is the faster of the two; tests/test_bptt.py checks the two agree).
        """
        if self.jit_loss:
            return bptt.loss_and_gradients(self, x, noise, replicas)
        return self._autodiff_loss_and_gradients(x, noise, replicas)

    def _autodiff_loss_and_gradients(self, x, noise, replicas):
        """`_loss_and_gradients` by automatic differentiation of `unroll`."""
        with tf.GradientTape() as tape:
            reconstruction, kl = self._elbo_terms(x, noise)
            reconstruction, kl = tf.reduce_mean(reconstruction), tf.reduce_mean(kl)
            loss = reconstruction + kl
            # Gradients are summed over replicas: average the loss over them instead.
            scaled_loss = loss / replicas
        return loss, reconstruction, kl, tape.gradient(scaled_loss, self.trainable_variables)

    def _mean_terms(self, x, noise):
        reconstruction, kl = self._elbo_terms(x, noise)
        return tf.reduce_mean(reconstruction), tf.reduce_mean(kl)

    def _compiled(self, name):
        """`name`'s method as a tf.function, XLA-compiled when `jit_loss` is on."""
        return self._cached(
            ("compiled", name, self.jit_loss),
            lambda: tf.function(getattr(self, name), jit_compile=self.jit_loss, reduce_retracing=True),
        )

    def train_step(self, data):
        # Input checks and noise run outside XLA (it would drop the asserts); the T-step forward and
        # backward pass runs inside it, the optimizer step after it.
        x = self.check_images(self._images_from(data))
        noise = self._replica_noise(tf.shape(x)[0])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        loss, reconstruction, kl, gradients = self._compiled("_loss_and_gradients")(x, noise, float(replicas))
        if self.config.grad_clip_norm:
            if replicas > 1:
                # Clip the global gradient, as one device would: sum the replicas' parts first, then
                # hand each replica 1/replicas of the clipped sum (the optimizer sums them again).
                context = tf.distribute.get_replica_context()
                gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
                gradients, _ = tf.clip_by_global_norm(gradients, self.config.grad_clip_norm)
                gradients = [g / replicas for g in gradients]
            else:
                gradients, _ = tf.clip_by_global_norm(gradients, self.config.grad_clip_norm)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(loss, reconstruction, kl)

    def test_step(self, data):
        x = self.check_images(self._images_from(data))
        reconstruction, kl = self._compiled("_mean_terms")(x, self._replica_noise(tf.shape(x)[0]))
        return self._update_metrics(reconstruction + kl, reconstruction, kl)

    def _replica_noise(self, batch_size):
        """Posterior noise for this replica's `batch_size` images. With several replicas each draws
        the noise of the whole global batch (their generator states are equal) and keeps its own
        rows, so training draws the noise a single device would (for equal per-replica batches)."""
        context = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if context is None or replicas == 1:
            return self.posterior_noise(batch_size)
        noise = self.posterior_noise(batch_size * replicas)
        start = context.replica_id_in_sync_group * batch_size
        return noise[:, :, start : start + batch_size]

    # -- generation and likelihoods ------------------------------------------------------------

    def prior_noise(self, num_samples, seed=None):
        """Noise z ~ N(0, I) of shape [num_samples, T, z_size]; the same seed gives the same noise."""
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, received {num_samples!r}.")
        shape = (int(num_samples), self.config.time_steps, self.config.z_size)
        if seed is None:
            return tf.random.normal(shape)
        return tf.random.stateless_normal(shape, seed=tf.constant([int(seed), 0], dtype=tf.int64))

    def noise_from_seeds(self, seeds):
        """Prior noise [batch, T, z_size] with row i drawn from the integer `seeds[i]` alone.

        What the SavedModel's `sample` signature uses: an image depends only on its own seed, never
        on the other requests batched with it.
        """
        seeds = tf.convert_to_tensor(seeds)
        if seeds.shape.rank != 1 or not seeds.dtype.is_integer:
            raise ValueError(f"seeds must be a vector of integers, received {seeds.dtype.name} of shape {seeds.shape}.")
        shape = [self.config.time_steps, self.config.z_size]
        return tf.map_fn(
            lambda s: tf.random.stateless_normal(shape, seed=tf.stack([s, tf.zeros_like(s)])),
            tf.cast(seeds, tf.int64),
            fn_output_signature=tf.TensorSpec(shape, tf.float32),
        )

    def generate(self, noise, return_sequences=True):
        """Draws images from given prior noise [batch, T, z_size].

        Returns a dict with `images` (the mean image sigmoid(c_T), [batch, B, A, C]: Bernoulli
        probabilities, or the logistic means / 255) and, with `return_sequences`, `canvases`
        (sigmoid(c_t) for every step, [batch, T, B, A, C]) and `write_windows` ([batch, T, 5]) when
        the write uses attention.
        """
        return self._generate_fn(return_sequences)(self.check_noise(noise))

    def sample(self, num_samples, seed=None, return_sequences=True):
        """Samples `num_samples` images from the prior; reproducible with an integer `seed`."""
        return self.generate(self.prior_noise(num_samples, seed), return_sequences)

    def reconstruct(self, images, return_sequences=False, noise=None):
        """Reconstructions sigmoid(c_T) of `images` (one posterior sample), as a dict like `generate`,
        plus `negative_elbo` (nats per image, analytic KL). `noise` [batch, T, z_size] fixes the
        posterior sample (default: fresh noise from the model's seed generator).
        """
        x = self.check_images(images)
        if noise is None:
            noise = self.posterior_noise(tf.shape(x)[0])
        else:
            noise = self.check_noise(noise)
            if noise.shape[2] is not None and x.shape[0] is not None and noise.shape[2] != x.shape[0]:
                raise ValueError(
                    f"noise must hold one row per image: {x.shape[0]} images, received noise for {noise.shape[2]}."
                )
        return self._reconstruct_fn(return_sequences)(x, noise)

    def importance_weighted_nll(self, images, num_samples=1, chunk_size=None):
        """-log p(x) estimated by the importance-weighted bound with K = `num_samples` (nats per image).

        K = 1 is a one-sample estimate of the negative ELBO; the bound tightens as K grows. Samples
        are drawn in chunks of `chunk_size` (default: all K at once up to 10,000 images per pass).
        """
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, received {num_samples!r}.")
        x = self.check_images(images)
        batch = int(x.shape[0]) if x.shape[0] is not None else None
        if chunk_size is None:
            chunk_size = max(1, min(num_samples, 10000 // max(batch or 1, 1)))
        log_weights = []
        remaining = num_samples
        while remaining > 0:
            k = min(chunk_size, remaining)
            log_weights.append(self._log_weights_fn()(x, tf.constant(k)))
            remaining -= k
        log_weights = tf.concat(log_weights, axis=0)  # [K, batch]
        return -(tf.reduce_logsumexp(log_weights, axis=0) - math.log(num_samples))

    # -- compiled helpers (kept out of Keras's attribute tracking) -----------------------------

    def _cached(self, key, build):
        cache = self.__dict__.get("_fn_cache")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_fn_cache", cache)
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def generate_outputs(self, noise, return_sequences=True):
        """`generate`'s graph on loop noise [T, z_size, batch] (no checks, no tf.function), for
        exporters that trace it into their own functions."""
        out = self.unroll(None, noise, record=return_sequences)
        result = {"images": tf.sigmoid(_to_hwc(out.canvas))}
        if return_sequences:
            result["canvases"] = tf.sigmoid(out.sequences["canvases"])
            if "write_windows" in out.sequences:
                result["write_windows"] = out.sequences["write_windows"]
        return result

    def reconstruct_outputs(self, x, noise, return_sequences=False):
        """`reconstruct`'s graph on float32 images [batch, B, A, C] and loop noise [T, z_size, batch]."""
        out = self.unroll(_to_chw(x), noise, record=return_sequences)
        logits = _to_hwc(out.canvas)
        result = {"images": tf.sigmoid(logits), "negative_elbo": self.reconstruction_nll(logits, x) + out.kl}
        if return_sequences:
            result.update(out.sequences)
            result["canvases"] = tf.sigmoid(result["canvases"])
        return result

    def _generate_fn(self, return_sequences):
        return self._cached(
            ("generate", return_sequences),
            lambda: tf.function(lambda noise: self.generate_outputs(noise, return_sequences), reduce_retracing=True),
        )

    def _reconstruct_fn(self, return_sequences):
        return self._cached(
            ("reconstruct", return_sequences),
            lambda: tf.function(
                lambda x, noise: self.reconstruct_outputs(x, noise, return_sequences), reduce_retracing=True
            ),
        )

    def _log_weights_fn(self):
        def log_weights(x, k):
            batch = tf.shape(x)[0]
            tiled = tf.tile(x, [k, 1, 1, 1])  # [k * batch, ...], sample-major
            out = self.unroll(_to_chw(tiled), self.posterior_noise(k * batch), importance=True)
            log_px = -self.reconstruction_nll(_to_hwc(out.canvas), tiled)
            return tf.reshape(log_px - out.log_ratio, tf.stack([k, batch]))

        return self._cached("log_weights", lambda: tf.function(log_weights, reduce_retracing=True))

    # -- serialization -------------------------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "jit_loss": self.jit_loss,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
