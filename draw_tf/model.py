"""The DRAW `keras.Model`: its weights, the Keras API (fit, evaluate, call, saving) and the public
methods, each delegating to the module that does the work:

- `draw_tf.cell`: one step (`DrawCell`); `draw_tf.unroll`: the T-step loops;
- `draw_tf.checks`: input checks; `draw_tf.noise`: prior, per-seed and posterior noise;
- `draw_tf.losses`: the negative ELBO and its gradients (`draw_tf.bptt`: by hand);
- `draw_tf.sampling`: generation and reconstruction outputs; `draw_tf.iwae`: the importance-weighted bound.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from draw_tf import checks, iwae, likelihoods, losses, noise as noise_lib, sampling, unroll as unroll_lib
from draw_tf.cell import DrawCell
from draw_tf.config import DrawConfig, get_preset
from draw_tf.image_layout import to_chw as _to_chw, to_hwc as _to_hwc  # also their former home
from draw_tf.likelihoods import bernoulli_nll  # noqa: F401 (its former home: draw_tf.model.bernoulli_nll)
from draw_tf.unroll import Unrolled  # noqa: F401 (its former home: draw_tf.model.Unrolled)


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

    # -- input checks (draw_tf.checks) ---------------------------------------------------------

    def check_images(self, images, name="images"):
        """Returns `images` as float32 after checking shape, finiteness and range [0, 1].

        For the discretized logistic likelihood they are 8-bit values / 255 (the likelihood rounds
        other values to the nearest multiple of 1/255).
        """
        return checks.check_images(images, self.config.image_shape, name)

    def check_noise(self, noise):
        """Checks z noise [batch, T, z_size]; returns it as the loop takes it, [T, z_size, batch]."""
        return checks.check_noise(noise, self.config.time_steps, self.config.z_size)

    # -- the T-step loop (draw_tf.unroll) --------------------------------------------------------

    def unroll(self, x_chw, noise, record=False, importance=False):
        """Runs T steps. x_chw [batch, C, B, A] or None (generate); noise [T, z, batch].

        Returns `Unrolled(canvas logits [batch, C, B, A], kl [batch], log_ratio [batch] or None,
        sequences dict or None)`. The loop only collects each step's posterior parameters; the KL
        terms are computed for all T steps at once afterwards (fewer, larger ops).
        """
        return unroll_lib.unroll(self.cell, x_chw, noise, record, importance)

    def posterior_noise(self, batch_size):
        """Loop noise [T, z_size, batch_size] from the model's seed generator."""
        return noise_lib.posterior_noise(self.config, self.seed_generator, batch_size)

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

    # -- the loss (draw_tf.losses) ---------------------------------------------------------------

    def negative_elbo_terms(self, images, noise=None):
        """(reconstruction [batch], kl [batch]) in nats for images [batch, B, A, C] in [0, 1]."""
        x = self.check_images(images)
        if noise is None:
            noise = self.posterior_noise(tf.shape(x)[0])
        return self._elbo_terms(x, noise)

    def _elbo_terms(self, x, noise):
        return losses.elbo_terms(self, x, noise)

    def reconstruction_nll(self, logits, images):
        """-log D(x | c_T) of `config.likelihood`, summed over pixels and channels: [batch] nats.

        logits: canvas logits c_T [batch, B, A, C]; images: float images [batch, B, A, C] in [0, 1].
        """
        return losses.reconstruction_nll(self.config, self.log_scale, logits, images)

    @property
    def num_dims(self):
        """Dimensions of one image, H * W * C: the divisor of bits per dimension."""
        return int(np.prod(self.config.image_shape))

    def bits_per_dim(self, nats_per_image):
        """Nats per image (e.g. a negative ELBO) in bits per dimension, nats / (H * W * C * ln 2)."""
        return likelihoods.bits_per_dim(nats_per_image, self.num_dims)

    def _loss_and_gradients(self, x, noise, replicas):
        """Mean (loss, reconstruction, kl) and the gradients of loss / replicas: from the
        hand-written backpropagation of `draw_tf.bptt` with `jit_loss`, else from automatic
        differentiation of `unroll` (see `draw_tf.losses.loss_and_gradients`)."""
        return losses.loss_and_gradients(self, x, noise, replicas)

    def _autodiff_loss_and_gradients(self, x, noise, replicas):
        """`_loss_and_gradients` by automatic differentiation of `unroll`."""
        return losses.autodiff_loss_and_gradients(self, x, noise, replicas)

    def _mean_terms(self, x, noise):
        return losses.mean_terms(self, x, noise)

    # -- training and evaluation steps -----------------------------------------------------------

    def _compiled(self, name):
        """`name`'s method as a tf.function, XLA-compiled when `jit_loss` is on."""
        return self._cached(
            ("compiled", name, self.jit_loss),
            lambda: tf.function(getattr(self, name), jit_compile=self.jit_loss, reduce_retracing=True, autograph=False),
        )

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

    @tf.autograph.experimental.do_not_convert  # plain graph code: no conversion when Keras traces it
    def train_step(self, data):
        # Input checks and noise run outside XLA (it would drop the asserts); the T-step forward and
        # backward pass runs inside it, the optimizer step after it.
        x = self.check_images(self._images_from(data))
        noise = self._training_noise(tf.shape(x)[0])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        loss, reconstruction, kl, gradients = self._compiled("_loss_and_gradients")(x, noise, float(replicas))
        gradients = losses.clip_gradients(gradients, self.config.grad_clip_norm, replicas)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(loss, reconstruction, kl)

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        x = self.check_images(self._images_from(data))
        reconstruction, kl = self._compiled("_mean_terms")(x, self._replica_noise(tf.shape(x)[0]))
        return self._update_metrics(reconstruction + kl, reconstruction, kl)

    def _training_noise(self, batch_size):
        """The posterior noise of this training step. With a `seed` it depends on (seed, the
        optimizer's step count) alone, so resumed training is exact; without, it comes from the
        seed generator."""
        return noise_lib.replica_noise(
            self.config, self.seed_generator, batch_size, step=self.optimizer.iterations, key=self.seed
        )

    def _replica_noise(self, batch_size):
        """Posterior noise for this replica's `batch_size` images (see `draw_tf.noise.replica_noise`)."""
        return noise_lib.replica_noise(self.config, self.seed_generator, batch_size)

    # -- generation and likelihoods (draw_tf.noise, draw_tf.sampling, draw_tf.iwae) -----------------

    def prior_noise(self, num_samples, seed=None):
        """Noise z ~ N(0, I) of shape [num_samples, T, z_size]; the same seed gives the same noise."""
        return noise_lib.prior_noise(self.config, num_samples, seed)

    def noise_from_seeds(self, seeds):
        """Prior noise [batch, T, z_size] with row i drawn from the integer `seeds[i]` alone.

        What the SavedModel's `sample` signature uses: an image depends only on its own seed, never
        on the other requests batched with it.
        """
        return noise_lib.noise_from_seeds(self.config, seeds)

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
            checks.check_noise_rows(noise, x)
        return self._reconstruct_fn(return_sequences)(x, noise)

    def importance_weighted_nll(self, images, num_samples=1, chunk_size=None):
        """-log p(x) estimated by the importance-weighted bound with K = `num_samples` (nats per image).

        K = 1 is a one-sample estimate of the negative ELBO; the bound tightens as K grows. Samples
        are drawn in chunks of `chunk_size` (default: all K at once up to 10,000 images per pass).
        """
        checks.check_num_samples(num_samples)
        return iwae.importance_weighted_nll(self, self.check_images(images), num_samples, chunk_size)

    def generate_outputs(self, noise, return_sequences=True):
        """`generate`'s graph on loop noise [T, z_size, batch] (no checks, no tf.function), for
        exporters that trace it into their own functions."""
        return sampling.generate_outputs(self, noise, return_sequences)

    def reconstruct_outputs(self, x, noise, return_sequences=False):
        """`reconstruct`'s graph on float32 images [batch, B, A, C] and loop noise [T, z_size, batch]."""
        return sampling.reconstruct_outputs(self, x, noise, return_sequences)

    # -- compiled helpers (kept out of Keras's attribute tracking) -----------------------------

    def _cached(self, key, build):
        cache = self.__dict__.get("_fn_cache")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_fn_cache", cache)
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def _generate_fn(self, return_sequences):
        return sampling.generate_fn(self, return_sequences)

    def _reconstruct_fn(self, return_sequences):
        return sampling.reconstruct_fn(self, return_sequences)

    def _log_weights_fn(self):
        return iwae.log_weights_fn(self)

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
