"""Training and evaluating classifiers on 100x100 cluttered MNIST (`draw-tf train_classifier`).

Training scenes are made anew every epoch from the training digits (a fresh position and fresh
clutter for each digit, fixed by the seed and the epoch); the held-out scenes are made once, with
their own seed, from held-out digits only.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from draw_tf import mnist_scenes
from draw_tf.classifier import DrawClassifier, baseline_classifier, get_classifier_preset
from draw_tf.files import atomic_path

KINDS = ("draw", "baseline")
HELD_OUT_SEED = 10_007  # the held-out scenes' seed, apart from any training seed


class ClutteredScenes(keras.utils.PyDataset):
    """Batches (images float32 [b, size, size, 1] in [0, 1], labels) of cluttered scenes of
    `digits`; with `fresh_each_epoch`, epoch e's scenes come from seed (seed, e)."""

    def __init__(self, digits, labels, batch_size=64, size=100, seed=0, fresh_each_epoch=True, steps=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, received {batch_size!r}.")
        self.digits, self.labels = np.asarray(digits), np.asarray(labels)
        self.batch_size, self.size, self.seed = batch_size, size, seed
        self.fresh_each_epoch = fresh_each_epoch
        self.steps = steps
        self.epoch = 0
        self._make()

    def _make(self):
        seed = [self.seed, self.epoch] if self.fresh_each_epoch else self.seed
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.digits)) if self.fresh_each_epoch else np.arange(len(self.digits))
        scenes, labels = mnist_scenes.cluttered_scenes(
            self.digits[order], self.labels[order], size=self.size, seed=rng.integers(2**31)
        )
        self.images, self.targets = scenes, labels

    def __len__(self):
        batches = -(-len(self.images) // self.batch_size)
        return min(batches, self.steps) if self.steps else batches

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.images[rows].astype(np.float32) / 255.0, self.targets[rows]

    def on_epoch_end(self):
        if self.fresh_each_epoch:
            self.epoch += 1
            self._make()


def build_classifier(kind, preset="cluttered_mnist", **overrides):
    config = get_classifier_preset(preset, **overrides)
    if kind == "draw":
        return DrawClassifier(config)
    if kind == "baseline":
        return baseline_classifier(config.image_shape, config.num_classes)
    raise ValueError(f"Unknown classifier kind {kind!r}; expected one of {list(KINDS)}.")


def compile_classifier(model, learning_rate=1e-3, clipnorm=1.0):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def held_out_scenes(data_dir=None, split="validation", size=100, limit=None):
    """(images float32 [n, size, size, 1] in [0, 1], labels) of the held-out digits, made once."""
    digits, labels = mnist_scenes.mnist_digits(split, data_dir)
    if limit:
        digits, labels = digits[:limit], labels[:limit]
    images, labels = mnist_scenes.cluttered_scenes(digits, labels, size=size, seed=HELD_OUT_SEED)
    return images.astype(np.float32) / 255.0, labels


def train_classifier(
    model_dir, kind="draw", preset="cluttered_mnist", data_dir=None, epochs=10, batch_size=64,
    learning_rate=1e-3, seed=0, steps_per_epoch=None, held_out_limit=None, verbose=2, overrides=None,
):
    """Trains `kind` (draw or baseline) on fresh cluttered scenes of the training digits; resumes
    from `model_dir/backup` after an interruption (Keras BackupAndRestore). Writes `model.keras`,
    `result.json` (held-out error) and, for draw, `glimpses.gif`. Returns the result dict."""
    if kind not in KINDS:
        raise ValueError(f"Unknown classifier kind {kind!r}; expected one of {list(KINDS)}.")
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ValueError(f"model_dir must be a directory, received the file {model_dir!r}.")
    config = get_classifier_preset(preset, **(overrides or {}))
    digits, labels = mnist_scenes.mnist_digits("train", data_dir)  # fails before anything is written
    test_x, test_y = held_out_scenes(data_dir, size=config.image_height, limit=held_out_limit)
    os.makedirs(model_dir, exist_ok=True)
    keras.utils.set_random_seed(seed)
    model = compile_classifier(build_classifier(kind, preset, **(overrides or {})), learning_rate)
    train_data = ClutteredScenes(digits, labels, batch_size, config.image_height, seed, steps=steps_per_epoch)
    history = model.fit(
        train_data, epochs=epochs, verbose=verbose,
        validation_data=(test_x, test_y), validation_batch_size=200,
        callbacks=[keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup"))],
    )
    loss, accuracy = model.evaluate(test_x, test_y, batch_size=200, verbose=0)
    result = {
        "kind": kind, "preset": preset, "config": config.to_dict(), "epochs": epochs, "train_digits": int(len(digits)),
        "held_out_scenes": int(len(test_y)), "held_out_loss": float(loss),
        "held_out_error": float(1.0 - accuracy), "parameters": int(model.count_params()),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    with atomic_path(os.path.join(model_dir, "model.keras"), suffix=".keras") as tmp:
        model.save(tmp)
    if kind == "draw":
        from draw_tf.classifier import glimpse_frames
        from draw_tf.visualize import save_gif, tile_frames

        frames = np.stack([glimpse_frames(model, test_x[i], scale=2) for i in range(4)])
        save_gif(os.path.join(model_dir, "glimpses.gif"), tile_frames(frames, columns=4), duration_ms=400)
    with atomic_path(os.path.join(model_dir, "result.json"), suffix=".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(result, f, indent=2)
    return result
