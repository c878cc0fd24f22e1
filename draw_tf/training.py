"""Training, evaluation and sampling on a model directory, shared by the CLI and the Python API.

A model directory holds `config.json` (the model's `DrawConfig`), `checkpoints/` (model, optimizer
and epoch, written with `tf.train.CheckpointManager`), `logs/` (TensorBoard), `samples/` (a PNG grid
per epoch) and, after training, `model.keras`. A run with `weight_average` also checkpoints the
moving average of its weights, and `model.keras`, the best-epoch weights and `load_model` hold
that average (`draw_tf.weight_average`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from draw_tf import data as data_lib
from draw_tf import noise as noise_lib
from draw_tf import plateau
from draw_tf.config import DrawConfig
from draw_tf.distribute import get_strategy
from draw_tf.files import atomic_path
from draw_tf.images import save_grid
from draw_tf.model import Draw
from draw_tf.optimizer import adam_with_decay
from draw_tf.visualize import TensorBoardImages
from draw_tf.weight_average import CHECKPOINT_KEY as WEIGHT_AVERAGE_KEY, WeightAverage, check_momentum, load_weight_average

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
FINAL_MODEL = "model.keras"
TRAINING_LOG = "training_log.jsonl"
BEST_WEIGHTS = "best-epoch-{epoch:04d}.weights.h5"  # the run's best epoch so far (see BestEpochWeights)
CANVAS_INITS = ("data", "zeros")  # where a new run's c_0 starts (see `train`)


def write_json_atomic(path, obj):
    with atomic_path(path, suffix=".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")


def _stored_run_config(model_dir):
    """The model_dir's config.json as a dict (empty when there is none)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def read_model_config(model_dir):
    """The `DrawConfig` stored in `model_dir`, or None if there is none."""
    stored = _stored_run_config(model_dir)
    return DrawConfig.from_dict(stored["model"]) if stored else None


def _check_model_dir(model_dir):
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ValueError(f"model_dir must be a directory, received the file {model_dir!r}.")


class _TrainingState:
    """Model, optimizer and the training position (finished epochs, and steps into the next one),
    checkpointed together. TF writes a checkpoint's files before it records the checkpoint as the
    latest, so a crash while saving leaves the previous checkpoint as the one restored."""

    def __init__(self, model, model_dir, max_to_keep=3, weight_average=None):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
        items = {"model": model, "epoch": self.epoch}
        # Added later: the step in the epoch, and the posterior noise's generator state (so a resumed
        # run draws the noise the uninterrupted run would have; Keras does not track it). A model_dir
        # whose checkpoints predate them resumes at an epoch boundary with a restarted noise sequence.
        later = {"step_in_epoch": self.step}
        # The step at which Adam's moments last started from zero (draw_tf.optimizer): 0, or the
        # step a run was restored at with a fresh Adam (pretrained_models.restore_run).
        self.moments_start = tf.Variable(0, dtype=tf.int64, trainable=False, name="adam_moments_start")
        if getattr(model, "optimizer", None) is not None:
            items["optimizer"] = model.optimizer
            later["noise_seed"] = model.seed_generator.state
            later["adam_moments_start"] = self.moments_start
        if weight_average is not None:  # the moving average of `draw-tf train --weight_average`
            later[WEIGHT_AVERAGE_KEY] = weight_average.averages
        self.model = model
        self._later = set(later)
        self._all_items = {**items, **later}
        # Of `later`, what the restored checkpoint did not hold: restored without, saved with from then on.
        self.withheld = set()
        self.checkpoint = tf.train.Checkpoint(**self._all_items)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=max_to_keep
        )

    def _checkpoint_for(self, path):
        """A Checkpoint of what `path` holds of this state (each checkpoint of a model_dir may
        predate some of `later`), and the names it lacks."""
        stored = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
        lacking = {name for name in self._later if name not in stored}
        items = {name: value for name, value in self._all_items.items() if name not in lacking}
        return tf.train.Checkpoint(**items), lacking

    def restore(self, partial=False):
        """Restores the latest readable checkpoint; returns its path or None if there is none.

        A checkpoint whose files are unreadable (truncated, corrupt, missing) is skipped with a
        warning for the one before it; one that does not fit the model is an error.
        """
        unreadable = []
        for path in reversed(self.manager.checkpoints):
            try:
                checkpoint, lacking = self._checkpoint_for(path)
                status = checkpoint.restore(path)
                status.assert_existing_objects_matched()  # every weight of this model comes from the checkpoint
                if partial:
                    status.expect_partial()  # the checkpoint may hold more (the optimizer's slots)
            except (tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.OutOfRangeError, OSError, IndexError) as e:
                # (TF reports a truncated data file as IndexError: "Read less bytes than requested")
                unreadable.append(path)
                print(
                    f"WARNING: checkpoint {path!r} is unreadable ({type(e).__name__}); trying the previous one.",
                    file=sys.stderr,
                )
                continue
            except (ValueError, tf.errors.OpError, AssertionError) as e:
                if not any("initial_canvas" in name for name, _ in tf.train.list_variables(path)):
                    raise ValueError(
                        f"Checkpoint {path!r} predates draw-tf 0.2's learned initial states (c_0, h_enc_0, "
                        "h_dec_0 of the paper): it cannot be loaded; train a new model in a new model_dir."
                    ) from e
                raise ValueError(
                    f"Checkpoint {path!r} does not match this model's configuration (or, when resuming, the "
                    f"optimizer's: a constant learning rate and --lr_decay keep different state): {e}"
                ) from e
            self.withheld = lacking
            if getattr(self.model, "optimizer", None) is not None:
                self.model.optimizer.moments_start = int(self.moments_start.numpy())  # read when train traces
            return path
        if unreadable:
            raise ValueError(f"Every checkpoint in {os.path.dirname(unreadable[0])!r} is unreadable: {unreadable}.")
        return None

    def save(self, epoch, step=0):
        """Saves after `step` steps of epoch `epoch` (step 0: `epoch` epochs are finished)."""
        bad = [v.path for v in self.model.trainable_variables if not np.all(np.isfinite(v.numpy()))]
        if bad:  # never let a diverged model replace the last good checkpoint
            raise FloatingPointError(
                f"Not saving: weights {bad[:3]} are not finite. The last good checkpoint "
                f"{self.manager.latest_checkpoint!r} is kept."
            )
        self.epoch.assign(epoch)
        self.step.assign(step)
        return self.manager.save(checkpoint_number=self.model.optimizer.iterations.numpy())


def checkpoint_position(checkpoint_path):
    """(finished epochs, steps into the next epoch) stored in a training checkpoint (steps 0 when it
    predates the step's tracking)."""
    reader = tf.train.load_checkpoint(checkpoint_path)
    names = reader.get_variable_to_shape_map()
    step = "step_in_epoch/.ATTRIBUTES/VARIABLE_VALUE"
    epoch = int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    return epoch, int(reader.get_tensor(step)) if step in names else 0


class TrainingCheckpoints(keras.callbacks.Callback):
    """Saves model, optimizer and position after every epoch and every `every_steps` steps (keeps
    the last few), and stops training with `FloatingPointError` when the loss stops being finite,
    before anything diverged is saved."""

    def __init__(self, state, every_steps=None, steps_per_epoch=None, first_step=0):
        super().__init__()
        self.state = state
        self.every_steps = every_steps
        self.steps_per_epoch = steps_per_epoch
        self.first_step = first_step  # steps of the current epoch done before this fit (a resumed epoch)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        step = self.first_step + batch + 1
        if loss is not None and not np.isfinite(float(loss)):
            raise FloatingPointError(
                f"Training stopped: the loss is {float(loss)} at epoch {self._epoch + 1}, step {step}. The last good "
                f"checkpoint {self.state.manager.latest_checkpoint!r} is kept; resume from it with a lower "
                "learning rate (or a smaller grad_clip_norm)."
            )
        if self.every_steps and step % self.every_steps == 0 and step != self.steps_per_epoch:
            self.state.save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.first_step = 0
        self.state.save(epoch + 1)


def code_version():
    """The package version and, in a git checkout, the commit (with `+dirty` for local changes)."""
    import subprocess

    from draw_tf import __version__

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", root, "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return f"{__version__}" + (f" ({commit})" if commit else "")


class TrainingLog(keras.callbacks.Callback):
    """Appends one JSON line per finished epoch to `path`: the epoch, the train and validation
    loss, reconstruction and KL (nats per image), the learning rate at the epoch's end, the wall
    seconds of the epoch and since the run (all its sessions) began, the command and the code
    version. A resumed run appends to the same file; an epoch trained again (a run killed after
    logging an epoch and before its checkpoint) replaces its earlier records. With a weight average
    (`draw_tf.weight_average`) the validation numbers are the average's, and `val_loss_unaveraged`,
    `val_reconstruction_unaveraged` and `val_kl_unaveraged` the raw weights'."""

    def __init__(self, path, command=None):
        super().__init__()
        self.path = path
        self.command = command if command is not None else " ".join(sys.argv)
        self.version = code_version()
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.time() - (self._epoch_start or time.time())
        learning_rate = self.model.optimizer.learning_rate
        earlier = [r for r in read_training_log(self.path) if r["epoch"] <= epoch] if os.path.exists(self.path) else []
        record = {"epoch": epoch + 1}
        for key in (
            "loss", "reconstruction", "kl", "val_loss", "val_reconstruction", "val_kl",
            "val_loss_unaveraged", "val_reconstruction_unaveraged", "val_kl_unaveraged",  # --weight_average
        ):
            if key in logs:
                record[key] = float(np.asarray(logs[key]).reshape(-1)[0])
        record.update(
            learning_rate=float(np.asarray(learning_rate)),
            steps=int(self.model.optimizer.iterations.numpy()),
            wall_seconds=round(seconds, 1),
            total_wall_seconds=round((earlier[-1]["total_wall_seconds"] if earlier else 0.0) + seconds, 1),
            time=utc_timestamp(),
            command=self.command,
            code_version=self.version,
        )
        write_training_log(self.path, earlier + [record])


def utc_timestamp():
    """Now, as the training log writes it: 2026-12-03T20:03:07Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_training_log(path, records):
    """Writes `records` (dicts) as a JSON-lines training log, whole, under a temporary name first."""
    with atomic_path(path, suffix=".jsonl") as tmp:
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)


def read_training_log(path):
    """The records of a `TrainingLog` file, one dict per epoch."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class HalveOnSlowProgress(keras.callbacks.Callback):
    """Halves the optimizer's constant learning rate after an epoch at which the run's training
    log (all its sessions) shows slow progress at the current rate (`plateau.progress_too_slow`).
    Comes after `TrainingLog` (the epoch's record must be in the log) and before the epoch's
    checkpoint, which then holds the new rate."""

    def __init__(self, log_path, min_gain, window):
        super().__init__()
        self.log_path = log_path
        self.min_gain, self.window = min_gain, window

    def on_epoch_end(self, epoch, logs=None):
        if not os.path.exists(self.log_path):
            return
        records = [r for r in read_training_log(self.log_path) if r["epoch"] <= epoch + 1]
        if records and records[-1]["epoch"] == epoch + 1 and plateau.progress_too_slow(records, self.min_gain, self.window):
            rate = self.model.optimizer.learning_rate
            rate.assign(float(rate.numpy()) / 2)
            print(
                f"Epoch {epoch + 1}: the validation bound gained less than {self.min_gain} nats over the last "
                f"{self.window} epochs at this rate; learning rate halved to {float(rate.numpy()):.4g}."
            )


class BestEpochWeights(keras.callbacks.Callback):
    """Keeps the weights of the run's best epoch: `model_dir/best-epoch-NNNN.weights.h5` after an
    epoch whose validation loss is lower than that of every earlier epoch in the training log (all
    sessions of the run), written whole under a temporary name before the previous best is removed.
    Comes after `TrainingLog` (it reads the earlier epochs from the log) and after the epoch's
    checkpoint, so an epoch that has a file is never trained again by a resumed run. A run that
    predates these files, or one stopped between its checkpoint and this file, gets one at its next
    new best; until then the file (if any) holds an earlier epoch, which is what `ship` then says.
    With a `weight_average` (`WeightAverage`), the file holds the averaged weights it validated."""

    def __init__(self, model_dir, weight_average=None):
        super().__init__()
        self.model_dir = model_dir
        self.weight_average = weight_average

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is None or not np.isfinite(float(loss)):
            return
        log_path = os.path.join(self.model_dir, TRAINING_LOG)
        earlier = [
            r["val_loss"] for r in read_training_log(log_path)
            if r["epoch"] <= epoch and math.isfinite(r.get("val_loss", math.nan))
        ]
        if earlier and float(loss) >= min(earlier):
            return
        path = os.path.join(self.model_dir, BEST_WEIGHTS.format(epoch=epoch + 1))
        with _averaged(self.weight_average):
            save_weights_atomic(self.model, path)
        for older, _ in best_epoch_files(self.model_dir):
            if older != path:
                os.remove(older)


def best_epoch_files(model_dir):
    """[(path, epoch)] of the `BestEpochWeights` files in `model_dir`, newest (highest epoch) first."""
    pattern = re.compile(re.escape(BEST_WEIGHTS).replace(r"\{epoch:04d\}", r"(\d+)") + "$")
    found = []
    for name in os.listdir(model_dir) if os.path.isdir(model_dir) else []:
        match = pattern.match(name)
        if match:
            found.append((os.path.join(model_dir, name), int(match.group(1))))
    return sorted(found, key=lambda item: -item[1])


def _averaged(weight_average):
    """Inside, the model holds the weight average if there is one (`WeightAverage.applied`)."""
    return contextlib.nullcontext() if weight_average is None else weight_average.applied()


class SampleGridEachEpoch(keras.callbacks.Callback):
    """Writes a PNG grid of samples from fixed noise after every epoch (from the weight average if
    there is one)."""

    def __init__(self, directory, num_samples=64, seed=0, weight_average=None):
        super().__init__()
        self.directory = directory
        self.num_samples = num_samples
        self.seed = seed
        self.weight_average = weight_average

    def on_epoch_end(self, epoch, logs=None):
        with _averaged(self.weight_average):
            sample_grid(self.model, os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png"), self.num_samples, self.seed)


def save_weights_atomic(model, path):
    """`model.save_weights(path)` (a .weights.h5 file) through a temporary file renamed into place."""
    with atomic_path(path, suffix=".weights.h5") as tmp:
        os.remove(tmp)  # h5py refuses to write over an existing (empty) file
        model.save_weights(tmp)
    return path


def save_model_atomic(model, path):
    """`model.save(path)` through a temporary file renamed into place."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def train(
    config,
    model_dir,
    dataset="embedded",
    data_dir=None,
    epochs=10,
    batch_size=100,
    learning_rate=1e-3,
    lr_decay=1.0,
    jit_compile=False,
    jit_loss=True,
    seed=0,
    steps_per_epoch=None,
    validation=True,
    num_samples=64,
    verbose=1,
    strategy="auto",
    save_every_steps=100,
    callbacks=None,
    canvas_init="data",
    weight_average=None,
    lr_halving=None,
):
    """Trains (or resumes training of) a DRAW model in `model_dir`; returns (model, history dict).

    Adam with `learning_rate` multiplied by `lr_decay` per epoch (smoothly, step by step; 1.0 keeps
    it constant). With 3e-3 and 0.93 the `mnist` preset reaches 100 nats in 8 epochs (README).
    `strategy`: a `tf.distribute.Strategy` or a name for `draw_tf.distribute.get_strategy` (`auto`
    takes a TPU or the GPUs when present); `batch_size` is the global batch.

    Model, optimizer and position are checkpointed after every epoch and every `save_every_steps`
    steps (None: epochs only); run again with the same `model_dir` to resume from the latest
    checkpoint, at the step where it was taken, on the same batches (`data.TrainingStream`). A
    loss that is not finite stops training with `FloatingPointError`, keeping the last good checkpoint.
    `callbacks`: more Keras callbacks, called after draw-tf's own (log, checkpoints, pictures).
    `canvas_init`: where a new run's learned initial canvas c_0 starts: "data", the logit of the
    mean of the first 10,000 training images (see `initial_canvas_logits`), or "zeros"
    (sigmoid(c_0) = 0.5 everywhere).
    `weight_average`: 0 (off), or the momentum M of a moving average of the weights (Polyak
    averaging, `draw_tf.weight_average`; e.g. 0.999, about the last 1,000 steps) that validation,
    the best-epoch weights, the sample grids and the final `model.keras` use; the log then also
    has the raw weights' validation (`val_loss_unaveraged`, on the same noise). None: as the
    model_dir's run had it (0 for a new run). It may be switched on when resuming: the average then
    starts at the restored weights.
    `lr_halving`: (min_gain, window) (or "0.3,15"): halve the constant rate after an epoch whose
    validation bound is less than min_gain nats below that of `window` epochs earlier at the same
    rate (`draw_tf.plateau`; the shipped `mnist` model's rule is 0.3 nats over 15 epochs); the rate
    starts at `learning_rate`, and a resumed run keeps the rate its checkpoint holds (a
    `learning_rate` other than the one the run was last started with is refused). "off": a
    constant rate, which a resumed run takes from `learning_rate`. None: as the model_dir's run
    had it (off for a new run).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, received {epochs!r}.")
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be a positive number, received {learning_rate!r}.")
    if isinstance(lr_decay, bool) or not isinstance(lr_decay, (int, float)) or not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay must be a number in (0, 1] (factor per epoch), received {lr_decay!r}.")
    stored_run = _stored_run_config(model_dir)  # the run's config.json, if it has one
    if weight_average is None:
        weight_average = stored_run.get("weight_average", 0.0)
    check_momentum(weight_average)
    if canvas_init not in CANVAS_INITS:
        raise ValueError(f"canvas_init must be one of {CANVAS_INITS}, received {canvas_init!r}.")
    rule_source = "" if lr_halving is None else " (asked for)"
    if lr_halving is None:
        lr_halving, rule_source = stored_run.get("lr_halving"), " (the model_dir's config.json; pass lr_halving off)"
    lr_halving = plateau.check_rule(lr_halving)
    if lr_halving is not None and (lr_decay != 1.0 or not validation):
        raise ValueError(
            f"lr_halving {lr_halving}{rule_source} needs a constant rate (lr_decay 1.0) and validation; received "
            f"lr_decay={lr_decay!r}, validation={validation!r}."
        )
    resuming = bool(tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR)))
    if lr_halving is not None and resuming and learning_rate != stored_run.get("learning_rate", learning_rate):
        raise ValueError(
            f"learning_rate {learning_rate!r} differs from {stored_run['learning_rate']!r}, the one this run was last "
            "started with: with lr_halving a resumed run keeps the rate its checkpoint holds. Pass the same "
            "learning_rate, or lr_halving off to set a constant rate."
        )
    _check_model_dir(model_dir)
    stored = read_model_config(model_dir)
    if stored is not None and stored != config:
        changed = {k: (v, getattr(config, k)) for k, v in stored.to_dict().items() if getattr(config, k) != v}
        raise ValueError(
            f"model_dir {model_dir!r} holds a model with a different configuration (stored, requested): {changed}. "
            "Use a new model_dir or the stored preset."
        )
    if isinstance(strategy, str):
        strategy = get_strategy(strategy)
    if save_every_steps is not None and (
        isinstance(save_every_steps, bool) or not isinstance(save_every_steps, int) or save_every_steps < 1
    ):
        raise ValueError(f"save_every_steps must be a positive integer or None, received {save_every_steps!r}.")
    # Build the data first so a missing dataset fails before anything is written.
    stream = data_lib.TrainingStream(dataset, batch_size, data_dir, seed, image_shape=config.image_shape)
    steps_per_epoch = steps_per_epoch or stream.batches_per_pass
    val_ds = None
    if validation:
        val_ds = data_lib.make_dataset(
            dataset, data_lib.held_out_split(dataset), batch_size, data_dir, shuffle=False, image_shape=config.image_shape
        )
    os.makedirs(model_dir, exist_ok=True)
    write_json_atomic(
        os.path.join(model_dir, CONFIG_FILE),
        {
            "model": config.to_dict(), "dataset": dataset, "batch_size": batch_size,
            "learning_rate": learning_rate, "lr_decay": lr_decay, "canvas_init": canvas_init,
            "weight_average": weight_average, "lr_halving": None if lr_halving is None else list(lr_halving),
        },
    )

    keras.utils.set_random_seed(seed)
    with strategy.scope():  # the model's and the optimizer's variables live on the strategy's devices
        model = Draw(config, seed=seed, jit_loss=jit_loss)
        model.compile(optimizer=adam_with_decay(learning_rate, lr_decay, steps_per_epoch), jit_compile=jit_compile)
        model.optimizer.build(model.trainable_variables)
        average = WeightAverage(model, weight_average, val_ds) if weight_average else None
        state = _TrainingState(model, model_dir, weight_average=average)
        restored = state.restore()
        if not restored and canvas_init == "data":
            model.cell.initial_canvas.assign(initial_canvas_logits(stream.mean_image(limit=10_000)))
        if average is not None and (not restored or WEIGHT_AVERAGE_KEY in state.withheld):
            average.reset()  # a new run, or one that averages from now on: from the weights it has
        if restored and lr_decay == 1.0 and lr_halving is None:
            model.optimizer.learning_rate.assign(learning_rate)  # a constant rate is optimizer state: use the one asked for now
    initial_epoch, initial_step = int(state.epoch.numpy()), int(state.step.numpy())
    if initial_step >= steps_per_epoch:  # steps_per_epoch was lowered since: that epoch is over
        initial_epoch, initial_step = initial_epoch + 1, 0
    if restored and verbose:
        print(f"Resuming from {restored} (epoch {initial_epoch}, step {initial_step}).")
    checkpoints = TrainingCheckpoints(state, save_every_steps, steps_per_epoch)
    log_path = os.path.join(model_dir, TRAINING_LOG)
    halving = [] if lr_halving is None else [HalveOnSlowProgress(log_path, *lr_halving)]
    callbacks = ([] if average is None else [average]) + [
        TrainingLog(log_path),
        *halving,
        checkpoints,
        BestEpochWeights(model_dir, average),
        SampleGridEachEpoch(os.path.join(model_dir, SAMPLES_DIR), num_samples=num_samples, seed=seed, weight_average=average),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs"), write_graph=False, profile_batch=0),
        TensorBoardImages(
            os.path.join(model_dir, "logs", "images"), num_samples=16, seed=seed, write_scalars=False,
            images=None if val_ds is None else next(iter(val_ds))[:8].numpy(),
        ),
    ] + list(callbacks or [])
    # A resumed epoch is finished by a fit of its remaining steps, the other epochs by one more fit;
    # each reads the training stream from its own position, so no batch is skipped or seen twice.
    fits = []
    if initial_epoch < epochs and initial_step:
        fits.append((initial_epoch, initial_epoch + 1, initial_step))
    if initial_epoch + (1 if initial_step else 0) < epochs:
        fits.append((initial_epoch + (1 if initial_step else 0), epochs, 0))
    history = {}
    start = time.time()
    for first_epoch, end_epoch, first_step in fits:
        checkpoints.first_step = first_step
        result = model.fit(
            stream.dataset(first_epoch * steps_per_epoch + first_step),
            validation_data=val_ds,
            epochs=end_epoch,
            initial_epoch=first_epoch,
            steps_per_epoch=steps_per_epoch - first_step,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the stream is shuffled already (by seed and position, so resumption is exact)
        )
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)
    if fits:
        history["wall_seconds"] = time.time() - start
    elif verbose:
        print(f"{model_dir!r} already holds {initial_epoch} epochs (asked for {epochs}); nothing to train.")
    with _averaged(average):
        save_model_atomic(model, os.path.join(model_dir, FINAL_MODEL))
    return model, history


def initial_canvas_logits(mean_image):
    """logit(mean image) clipped to [-6.9, 6.9] (probabilities 0.001..0.999): a starting canvas
    c_0 under which an untrained model already costs about the independent-pixel baseline, instead
    of log 2 per pixel. At zero, the writes must first paint the whole background dark (with gains
    of up to 1/gamma ~ 100 on 60x60 images), and Adam moves c_0 itself by only about the learning
    rate per step."""
    p = tf.clip_by_value(tf.convert_to_tensor(mean_image, tf.float32), 1e-3, 1.0 - 1e-3)
    return tf.math.log(p) - tf.math.log1p(-p)


def load_model(model_dir_or_file, seed=None):
    """A `Draw` from a `.keras` file or from the latest checkpoint of a model directory (its weight
    average if the run keeps one: `draw-tf train --weight_average`)."""
    path = model_dir_or_file
    if os.path.isfile(path):
        if not path.endswith(".keras"):
            raise ValueError(f"Expected a model directory or a .keras file, received the file {path!r}.")
        return load_keras_file(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"No model directory or .keras file at {path!r}.")
    config = read_model_config(path)
    if config is None:
        raise FileNotFoundError(f"{path!r} has no {CONFIG_FILE}; is it a draw-tf model_dir?")
    model = Draw(config, seed=seed)
    state = _TrainingState(model, path)
    restored = state.restore(partial=True)
    if restored is None:
        final = os.path.join(path, FINAL_MODEL)
        if os.path.exists(final):
            return load_keras_file(final)
        raise FileNotFoundError(f"{path!r} holds no checkpoint yet.")
    load_weight_average(model, restored)
    return model


def load_keras_file(path):
    """`keras.models.load_model(path)`, with a clear error for a file saved before draw-tf 0.2's
    learned initial states."""
    try:
        return keras.models.load_model(path)
    except ValueError as e:
        if "draw_cell" in str(e) and "variables" in str(e):
            raise ValueError(
                f"{path!r} predates draw-tf 0.2's learned initial states (c_0, h_enc_0, h_dec_0 of the paper) "
                f"or holds another configuration, and cannot be loaded: {e}"
            ) from e
        raise


def evaluate_nll(model, dataset, num_samples=0, max_batches=None, noise_key=None):
    """Mean negative ELBO (analytic KL) and, with num_samples = K > 0, the importance-weighted bound.

    Both in nats per image over the images of `dataset` (batches of images); for the discretized
    logistic likelihood also in bits per dimension (`bits_per_dim`, `iwae_bits_per_dim`). With an
    integer `noise_key`, batch i's posterior noise of the negative ELBO is drawn from (noise_key, i)
    alone, so that other weights measured with the same key see the same noise.
    """
    totals = {"negative_elbo": 0.0, "iwae": 0.0}
    count = 0
    for i, batch in enumerate(dataset):
        if max_batches is not None and i >= max_batches:
            break
        noise = None
        if noise_key is not None:  # loop noise [T, z, batch] as the user-facing [batch, T, z]
            noise = tf.transpose(noise_lib.step_noise(model.config, noise_key, i, int(batch.shape[0])), [2, 0, 1])
        out = model.reconstruct(batch, noise=noise)
        totals["negative_elbo"] += float(tf.reduce_sum(out["negative_elbo"]))
        if num_samples:
            totals["iwae"] += float(tf.reduce_sum(model.importance_weighted_nll(batch, num_samples)))
        count += int(batch.shape[0])
    if count == 0:
        raise ValueError("The evaluation dataset is empty.")
    result = {"num_images": count, "negative_elbo": totals["negative_elbo"] / count}
    if num_samples:
        result["iwae_num_samples"] = int(num_samples)
        result["iwae_nll"] = totals["iwae"] / count
    if model.config.likelihood == "discretized_logistic":  # a likelihood of 8-bit values: bits/dim too
        for nats, bits in (("negative_elbo", "bits_per_dim"), ("iwae_nll", "iwae_bits_per_dim")):
            if nats in result:
                result[bits] = float(model.bits_per_dim(result[nats]))
    return result


def sample_grid(model, path, num_samples=64, seed=0):
    """Writes a PNG grid of `num_samples` images sampled with `seed`; returns the path."""
    out = model.sample(num_samples, seed=seed, return_sequences=False)
    return save_grid(path, np.asarray(out["images"]))
