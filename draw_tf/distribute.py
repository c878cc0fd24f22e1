"""Choosing the `tf.distribute` strategy that training runs under (CLI, Python API and notebooks)."""

from __future__ import annotations

import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")


def _tpu_strategy():
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()  # ValueError when no TPU is attached
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(name="auto"):
    """The strategy named `name`:

    - `auto`: a TPU if one is attached (Colab/Cloud TPU), else `MirroredStrategy` over the GPUs
      if there are any, else the default strategy (one CPU or GPU device);
    - `default`: the default strategy; `mirrored`: `MirroredStrategy` over all local GPUs (the
      CPU without GPUs); `multi_worker`: `MultiWorkerMirroredStrategy` over the hosts that
      `$TF_CONFIG` lists (every worker runs the same command with its own task index); `tpu`:
      `TPUStrategy`, failing clearly when there is no TPU.

    The batch size given to training is the global batch, split across the replicas.
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, received {name!r}.")
    if name == "tpu":
        try:
            return _tpu_strategy()
        except (ValueError, tf.errors.NotFoundError) as e:
            raise ValueError(f"strategy 'tpu' needs an attached TPU; none was found ({e}).") from e
    if name == "auto":
        try:
            return _tpu_strategy()
        except (ValueError, tf.errors.NotFoundError):
            pass
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multi_worker' needs $TF_CONFIG: the cluster's workers and this worker's index.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()
