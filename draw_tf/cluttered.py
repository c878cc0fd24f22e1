"""Training and evaluating classifiers on 100x100 cluttered MNIST (`draw-tf train_classifier`).

Training scenes are made anew every epoch from the training digits (a fresh position and fresh
clutter for each digit, fixed by the seed and the epoch); the validation scenes (held-out training
digits, for choosing the epoch) and the test scenes (the 10,000 test digits, for the reported
error) are made once, each split with its own seed, from that split's digits only.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import time

import keras
import numpy as np

from draw_tf import gradient_clip as gradient_clips
from draw_tf import mnist_scenes
from draw_tf.classifier import DrawClassifier, baseline_classifier, get_classifier_preset
from draw_tf.files import atomic_path
from draw_tf.training import save_weights_atomic, write_json_atomic
from draw_tf.weight_average import OptimizerWeightAverage, check_momentum, optimizer_average_applied

KINDS = ("draw", "baseline")
# The held-out scenes' seeds, apart from any training seed: one scene per digit, made once.
SCENE_SEEDS = {"validation": 10_007, "test": 20_011}
CONFIG_FILE = "config.json"  # kind, preset and the classifier's config
LOG_FILE = "training_log.csv"
BEST_WEIGHTS = "best.weights.h5"  # the epoch with the lowest validation error so far


class ClutteredScenes(keras.utils.PyDataset):
    """Batches (images float32 [b, size, size, 1] in [0, 1], labels) of cluttered scenes of
    `digits`; with `fresh_each_epoch`, epoch e's scenes (and their order) come from seed (seed, e)
    alone. `fit` must tell it the epoch: pass `callback()` (which also makes a resumed run continue
    the sequence) and `shuffle=False`."""

    def __init__(self, digits, labels, batch_size=64, size=100, seed=0, fresh_each_epoch=True, steps=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, received {batch_size!r}.")
        self.digits, self.labels = np.asarray(digits), np.asarray(labels)
        if len(self.digits) != len(self.labels):
            raise ValueError(f"Need one label per digit: {len(self.digits)} digits, received {len(self.labels)} labels.")
        self.batch_size, self.size, self.seed = batch_size, size, seed
        self.fresh_each_epoch = fresh_each_epoch
        self.steps = steps
        self.epoch = None
        self.set_epoch(0)

    def set_epoch(self, epoch):
        """Makes epoch `epoch`'s scenes (once: nothing changes for the same epoch)."""
        epoch = epoch if self.fresh_each_epoch else 0
        if epoch == self.epoch:
            return
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.digits)) if self.fresh_each_epoch else np.arange(len(self.digits))
        self.images, self.targets = mnist_scenes.cluttered_scenes(
            self.digits[order], self.labels[order], size=self.size, seed=int(rng.integers(2**31))
        )

    def callback(self):
        """A Keras callback that calls `set_epoch` at the start of every epoch of `fit`."""
        return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs=None: self.set_epoch(epoch))

    def __len__(self):
        batches = -(-len(self.images) // self.batch_size)
        return min(batches, self.steps) if self.steps else batches

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.images[rows].astype(np.float32) / 255.0, self.targets[rows]


def build_classifier(kind, preset="cluttered_mnist", **overrides):
    config = get_classifier_preset(preset, **overrides)
    if kind == "draw":
        return DrawClassifier(config)
    if kind == "baseline":
        return baseline_classifier(config.image_shape, config.num_classes)
    raise ValueError(f"Unknown classifier kind {kind!r}; expected one of {list(KINDS)}.")


def compile_classifier(model, learning_rate=1e-3, gradient_clip=gradient_clips.DEFAULT, weight_average=0.0):
    """Adam with the gradient clipped as `gradient_clip` says (`draw_tf.gradient_clip`; by default
    each weight tensor's gradient to norm 1 on its own, not their global norm); with
    `weight_average` M > 0 Adam also keeps the moving average of the weights, average <- M average +
    (1 - M) weights after every step (from the first step's weights), which
    `optimizer_average_applied` puts in the model."""
    average = dict(use_ema=True, ema_momentum=float(weight_average)) if weight_average else {}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, **gradient_clips.adam_arguments(gradient_clip), **average),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def held_out_scenes(data_dir=None, split="validation", size=100, limit=None):
    """(images float32 [n, size, size, 1] in [0, 1], labels) of the `validation` or `test` digits,
    one scene per digit, made once with that split's own seed."""
    digits, labels = mnist_scenes.mnist_digits(split, data_dir)
    if limit:
        digits, labels = digits[:limit], labels[:limit]
    images, labels = mnist_scenes.cluttered_scenes(digits, labels, size=size, seed=SCENE_SEEDS[split])
    return images.astype(np.float32) / 255.0, labels


def test_scenes(data_dir=None, size=100, limit=None):
    """`held_out_scenes` of the `test` digits, or None when `data_dir` has only the test digits
    (then split into train and validation, with no test split)."""
    try:
        return held_out_scenes(data_dir, "test", size=size, limit=limit)
    except ValueError:
        return None


def best_row(log):
    """The log row of the epoch with the lowest validation error (the earliest of equals)."""
    return min(log, key=lambda r: (1.0 - r["val_accuracy"], r["epoch"]))


def read_log(model_dir):
    """The per-epoch rows of `model_dir/training_log.csv` (the last row of each epoch, as floats)."""
    path = os.path.join(model_dir, LOG_FILE)
    return read_log_file(path) if os.path.exists(path) else []


def read_log_file(path):
    """The per-epoch rows of a train_classifier training_log.csv (the last row of each epoch, as floats)."""
    with open(path, newline="") as f:
        rows = {int(row["epoch"]): {k: float(v) for k, v in row.items()} for row in csv.DictReader(f)}
    return [rows[e] for e in sorted(rows)]


class _EpochLearningRate(keras.callbacks.Callback):
    """Sets the rate of epoch e (0-based) to learning_rate * lr_decay**e at the epoch's start. The
    optimizer keeps a plain rate variable, so a run may continue with another schedule (or none)
    with its Adam state: Keras does not load a backup's optimizer into one with a schedule object
    (different variables). Unlike keras.callbacks.LearningRateScheduler it adds no column to the
    epoch logs, which the CSV log of a resumed run could not take."""

    def __init__(self, learning_rate, lr_decay):
        super().__init__()
        self.learning_rate, self.lr_decay = learning_rate, lr_decay

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate.assign(self.learning_rate * self.lr_decay**epoch)


class _EpochSeconds(keras.callbacks.Callback):
    """Adds `wall_seconds` (this epoch's, validation included) to the logs the next callbacks see."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["wall_seconds"] = time.time() - self.start


class _BestWeights(keras.callbacks.Callback):
    """Writes the weights to `path` (whole or not at all) after an epoch whose validation accuracy
    is higher than `best` (the run's best so far, None for none) and every epoch's since; with
    `averaged`, the weight average that was validated."""

    def __init__(self, path, best=None, averaged=False):
        super().__init__()
        self.path, self.best, self.averaged = path, best, averaged

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy")
        if accuracy is None or (self.best is not None and float(accuracy) <= self.best):
            return
        self.best = float(accuracy)
        with optimizer_average_applied(self.model) if self.averaged else contextlib.nullcontext():
            save_weights_atomic(self.model, self.path)


def _stored_run(model_dir):
    """The config.json of the run in `model_dir` (None for none), with the defaults of the fields
    added since: `classify_every_glimpse` and `weight_average` off."""
    config_path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(config_path):
        return None
    with open(config_path) as f:
        stored = json.load(f)
    if stored.get("kind") == "draw" and isinstance(stored.get("config"), dict):
        stored["config"].setdefault("classify_every_glimpse", False)
    stored.setdefault("weight_average", 0.0)
    return stored


def check_run_config(model_dir, described):
    """Raises a ValueError if `model_dir` holds a classifier other than `described` ({kind, preset,
    config, weight_average}): a run keeps its weight average (Adam's saved state has it or not)."""
    stored = _stored_run(model_dir)
    described = {"weight_average": 0.0, **described}
    if stored is not None and stored != described and {**stored, "weight_average": 0} == {**described, "weight_average": 0}:
        raise ValueError(
            f"model_dir {model_dir!r} holds a run with weight_average={stored['weight_average']}, received "
            f"weight_average={described['weight_average']}: a run keeps its own (Adam's saved state has the average or "
            f"not); start another model_dir, e.g. from this run's weights with --init_weights={os.path.join(model_dir, BEST_WEIGHTS)}."
        )
    if stored is not None and stored != described:
        raise ValueError(
            f"model_dir {model_dir!r} holds a classifier with another configuration (stored {stored}, requested "
            f"{described}); pick another model_dir."
        )


def train_classifier(
    model_dir, kind="draw", preset="cluttered_mnist", data_dir=None, epochs=10, batch_size=64,
    learning_rate=1e-3, seed=0, steps_per_epoch=None, held_out_limit=None, verbose=2, overrides=None, lr_decay=1.0,
    init_weights=None, weight_average=None, gradient_clip=gradient_clips.DEFAULT,
):
    """Trains `kind` (draw or baseline) on fresh cluttered scenes of the `train` digits and
    validates every epoch on scenes of the `validation` digits (held-out training digits); the
    weights of the epoch with the lowest validation error are kept and, with the full MNIST,
    evaluated on scenes of the 10,000 `test` digits (the paper's protocol). Resumes from
    `model_dir/backup` (Keras BackupAndRestore, kept after the last epoch) after an interruption or
    with more `epochs`. Writes `config.json`, `training_log.csv` (per epoch: loss, accuracy,
    val_loss, val_accuracy, wall_seconds), `model.keras` (the selected weights), `result.json` and,
    for draw, `glimpses.gif`. `lr_decay`: the learning rate's factor per epoch (1.0: constant), set
    at every epoch's start from the epoch number, so a resumed run continues the schedule, and a
    run may continue with another one. `init_weights`: a new run starts from these weights (a
    `.weights.h5` file or a shipped classifier's name, e.g. "cluttered_mnist": a warm restart,
    with a fresh Adam and the schedule from epoch 0) instead of a random initialisation; a
    resumed run ignores it. `weight_average`: 0 (off) or the momentum M of a moving average of the
    weights (`compile_classifier`) that validation, the kept epoch, `model.keras` and the result
    use; the log also gets the trained weights' validation (`val_accuracy_unaveraged`). None: as
    the model_dir's run has it (off for a new run); a run cannot change it. `gradient_clip`: see
    `draw_tf.gradient_clip`; like the rate, given again when a run is resumed (the result records
    it). Returns the result dict."""
    if kind not in KINDS:
        raise ValueError(f"Unknown classifier kind {kind!r}; expected one of {list(KINDS)}.")
    if isinstance(lr_decay, bool) or not isinstance(lr_decay, (int, float)) or not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay must be a number in (0, 1] (factor per epoch), received {lr_decay!r}.")
    gradient_clips.adam_arguments(gradient_clip)  # checked before anything is written
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ValueError(f"model_dir must be a directory, received the file {model_dir!r}.")
    config = get_classifier_preset(preset, **(overrides or {}))
    described = {"kind": kind, "preset": preset}
    described["config"] = config.to_dict() if kind == "draw" else {"image_shape": list(config.image_shape), "num_classes": config.num_classes}
    config_path = os.path.join(model_dir, CONFIG_FILE)
    if weight_average is None:
        weight_average = (_stored_run(model_dir) or {}).get("weight_average", 0.0)
    described["weight_average"] = float(check_momentum(weight_average))
    check_run_config(model_dir, described)
    init_path = _init_weights_path(init_weights)  # these fail before anything is written
    digits, labels = mnist_scenes.mnist_digits("train", data_dir)
    size = config.image_height
    val_x, val_y = held_out_scenes(data_dir, "validation", size=size, limit=held_out_limit)
    test = test_scenes(data_dir, size=size, limit=held_out_limit)
    keras.utils.set_random_seed(seed)
    model = compile_classifier(build_classifier(kind, preset, **(overrides or {})), learning_rate, gradient_clip, weight_average)
    resuming = os.path.isfile(os.path.join(model_dir, "backup", "latest.weights.h5"))  # BackupAndRestore's file
    if init_path is not None:
        if resuming:
            print(f"init_weights ignored: {model_dir!r} resumes from its own backup.", file=sys.stderr)
        else:
            try:
                load_init_weights(model, init_path)
            except ValueError as e:
                first_line = str(e).strip().splitlines()[0]
                raise ValueError(
                    f"init_weights {init_weights!r} do not fit this {kind} classifier ({preset}, {overrides or {}}): {first_line}"
                ) from e
    os.makedirs(model_dir, exist_ok=True)
    write_json_atomic(config_path, described)
    train_data = ClutteredScenes(digits, labels, batch_size, size, seed, steps=steps_per_epoch)
    earlier = read_log(model_dir)
    best_path = os.path.join(model_dir, BEST_WEIGHTS)
    callbacks = [
        train_data.callback(),
        _EpochLearningRate(learning_rate, lr_decay),
        _EpochSeconds(),
        *([OptimizerWeightAverage((val_x, val_y))] if weight_average else []),
        # the lowest validation error so far, also across resumed runs (from the log)
        _BestWeights(best_path, max((r["val_accuracy"] for r in earlier), default=None) if os.path.exists(best_path) else None,
                     averaged=bool(weight_average)),
        keras.callbacks.CSVLogger(os.path.join(model_dir, LOG_FILE), append=True),
        # kept after the last epoch, so a later run with more --epochs continues from it
        keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup"), delete_checkpoint=False),
    ]
    model.fit(
        train_data, epochs=epochs, verbose=verbose, shuffle=False,
        validation_data=(val_x, val_y), validation_batch_size=200, callbacks=callbacks,
    )
    log = read_log(model_dir)
    final = _errors(model, (val_x, val_y), test)  # fit leaves the weight average in the model (finalize_variable_values)
    if os.path.exists(best_path):
        model.load_weights(best_path)
    best_epoch = best_row(log)["epoch"] + 1 if log else epochs
    selected = _errors(model, (val_x, val_y), test)
    result = dict(
        described, epochs=epochs, learning_rate=learning_rate, lr_decay=lr_decay, gradient_clip=gradient_clip, batch_size=batch_size,
        train_digits=int(len(digits)), validation_scenes=int(len(val_y)), test_scenes=int(len(test[1])) if test else 0,
        selected_epoch=int(best_epoch), validation_error=selected["validation"], test_error=selected.get("test"),
        final_validation_error=final["validation"], final_test_error=final.get("test"),
        parameters=int(model.count_params()), train_seconds=float(sum(r.get("wall_seconds", 0.0) for r in log)),
    )
    if init_weights is not None:
        result["init_weights"] = init_weights
    with atomic_path(os.path.join(model_dir, "model.keras"), suffix=".keras") as tmp:
        model.save(tmp)
    write_json_atomic(os.path.join(model_dir, "result.json"), result)
    if kind == "draw":
        from draw_tf.classifier import glimpse_frames
        from draw_tf.visualize import save_gif, tile_frames

        shown = (test or (val_x, val_y))[0]
        frames = np.stack([glimpse_frames(model, shown[i], scale=2) for i in range(min(4, len(shown)))])
        save_gif(os.path.join(model_dir, "glimpses.gif"), tile_frames(frames, columns=4), duration_ms=400)
    return result


def load_init_weights(model, path):
    """Loads a warm start's weights into `model`. A DRAW classifier's window map is stored scaled
    by its window_rate (`attention.AttentionWindow`): when the weights' run trained at another rate
    (read from the config.json beside them, as in a model_dir or a shipped classifier), their
    window kernel is rescaled so that the model computes the same windows at its own rate. A
    .weights.h5 file with no config.json beside it is taken to have the model's rate."""
    model.load_weights(path)
    source = os.path.join(os.path.dirname(os.path.abspath(path)), CONFIG_FILE)
    if not isinstance(model, DrawClassifier) or not os.path.isfile(source):
        return
    with open(source) as f:
        stored = json.load(f).get("config", {})
    trained_rate = float(stored.get("window_rate", 1.0))  # saved before window_rate: a plain map
    if trained_rate != model.config.window_rate:
        kernel = model.window.dense.kernel
        kernel.assign(kernel * (trained_rate / model.config.window_rate))


def _init_weights_path(init_weights):
    """The weights file a warm restart starts from: `init_weights` itself, or a shipped classifier's."""
    if init_weights is None:
        return None
    init_weights = os.fspath(init_weights)
    if init_weights.endswith(".h5") or os.sep in init_weights or os.path.exists(init_weights):  # a file, not a name
        if not (init_weights.endswith(".weights.h5") and os.path.isfile(init_weights)):
            raise FileNotFoundError(f"init_weights: expected an existing .weights.h5 file, received {init_weights!r}.")
        return init_weights
    from draw_tf import pretrained_models

    return os.path.join(pretrained_models._model_dir(init_weights, "classifier"), pretrained_models.WEIGHTS_FILE)


def load_run(model_dir, weights=BEST_WEIGHTS):
    """(stored config dict, compiled classifier with `model_dir/weights`) of a train_classifier run."""
    with open(os.path.join(model_dir, CONFIG_FILE)) as f:
        stored = json.load(f)
    path = os.path.join(model_dir, weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r} does not exist: the run has not finished an epoch yet.")
    if stored["kind"] == "draw":
        model = DrawClassifier(stored["config"])
    else:
        model = baseline_classifier(stored["config"]["image_shape"], stored["config"]["num_classes"])
    model.load_weights(path)
    return stored, compile_classifier(model)


def evaluate_run(model_dir, data_dir=None):
    """The errors of a finished or stopped train_classifier run's best epoch: `validation_error` and `test_error` (None without the full MNIST) measured on its
    scenes, with the epoch (1-based), the epochs in its log and its training hours."""
    return measure_run(model_dir, data_dir)[0]


def measure_run(model_dir, data_dir=None):
    """(`evaluate_run`'s result, the classifier it measured, the log it selected from): one read of
    the run's best weights and log, so that what is measured is what is shipped."""
    stored, model = load_run(model_dir)
    log = read_log(model_dir)
    size = stored["config"]["image_height"] if stored["kind"] == "draw" else stored["config"]["image_shape"][0]
    validation = held_out_scenes(data_dir, "validation", size=size)
    test = test_scenes(data_dir, size=size)
    errors = _errors(model, validation, test)
    selected = best_row(log)
    if abs((1.0 - selected["val_accuracy"]) - errors["validation"]) > 1.5 / len(validation[1]):  # one scene
        raise ValueError(
            f"{model_dir!r}'s {BEST_WEIGHTS} does not hold the log's best epoch (validation error "
            f"{1.0 - selected['val_accuracy']:.4f} in the log, {errors['validation']:.4f} measured): is the run "
            "writing it right now? Try again."
        )
    result = {
        "kind": stored["kind"], "preset": stored["preset"], "epoch": int(selected["epoch"]) + 1, "epochs_trained": len(log),
        "validation_error": errors["validation"], "test_error": errors.get("test"),
        "validation_scenes": int(len(validation[1])), "test_scenes": int(len(test[1])) if test else 0,
        "train_hours": round(sum(r.get("wall_seconds", 0.0) for r in log) / 3600.0, 2),
    }
    return result, model, log


def _errors(model, validation, test):
    """{"validation": error, "test": error (when there is a test set)} of `model` as it is now."""
    out = {}
    for name, data in (("validation", validation), ("test", test)):
        if data is not None:
            _, accuracy = model.evaluate(*data, batch_size=200, verbose=0)
            out[name] = float(1.0 - accuracy)
    return out
