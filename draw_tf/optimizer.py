"""The optimizer of `draw-tf train`: Keras's Adam, restartable with fresh moments mid-run.

A run continued on another machine (`python -m draw_tf.pretrained_models restore`) gets its weights
and its step counter back, but not Adam's moments (they are not shipped). The step counter must
continue: it drives the learning-rate schedule, the training noise and the checkpoint numbers. Keras's
Adam also takes its bias correction from it, and at step 18,000 that correction is 1, while the
restarted moments are still near zero: m fills in about 10 steps, v in about 1,000, so the first
updates are m / sqrt(v) ~ 3-6.5 times the learning rate in every weight for about 100 steps, still
2 times at step 300 (`mnist_const` restored at epoch 36: the raw weights' validation bound rose
from 86.8 to 90.0 nats in the epoch after).
`RestartableAdam` counts its bias correction from `moments_start`, the step at which its moments
were last zero, so its first steps after a restore are those of a new Adam.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="draw_tf")
class RestartableAdam(keras.optimizers.Adam):
    """Keras's Adam whose bias correction counts the steps since `moments_start` (a step number,
    0 unless the moments were restarted; `draw_tf.training` checkpoints it beside the optimizer).
    With `moments_start` 0 it is Keras's Adam, update for update."""

    moments_start = 0

    def update_step(self, gradient, variable, learning_rate):
        if not self.moments_start:
            return super().update_step(gradient, variable, learning_rate)
        # Keras's update is rate * sqrt(1 - b2^k) / (1 - b1^k) * m / (sqrt(v) + eps) with k the
        # step counter + 1; the moments' own step is j = k - moments_start. Scaling the rate by
        # the ratio of the two corrections gives Adam's update at step j.
        dtype = variable.dtype
        k = ops.cast(self.iterations + 1, dtype)
        j = ops.cast(ops.maximum(self.iterations + 1 - self.moments_start, 1), dtype)  # >= 1: never 0 / 0
        b1, b2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)

        def correction(step):
            return ops.sqrt(1 - ops.power(b2, step)) / (1 - ops.power(b1, step))

        rate = ops.cast(learning_rate, dtype) * correction(j) / correction(k)
        return super().update_step(gradient, variable, rate)


def adam_with_decay(learning_rate, lr_decay=1.0, steps_per_epoch=None):
    """Adam (`RestartableAdam`) whose learning rate is multiplied by `lr_decay` per epoch of
    `steps_per_epoch` steps, smoothly step by step (the optimizer's step counter, so it continues
    after a resume)."""
    if lr_decay == 1.0:
        return RestartableAdam(learning_rate)
    if not steps_per_epoch or steps_per_epoch < 1:
        raise ValueError(
            f"lr_decay needs the number of steps per epoch: pass steps_per_epoch, received {steps_per_epoch!r}."
        )
    return RestartableAdam(keras.optimizers.schedules.ExponentialDecay(learning_rate, steps_per_epoch, lr_decay))
