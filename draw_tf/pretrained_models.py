"""Trained models shipped inside the package: `draw_tf.pretrained("mnist")`, offline.

Each model is a folder `draw_tf/assets/pretrained/<name>/` holding
- `config.json`: the `DrawConfig` fields (under "model") and how it was trained, or for a
  classifier (e.g. "cluttered_mnist") the `train_classifier` run's config (kind, preset, config);
- `model.weights.h5`: the float32 weights (Keras `save_weights`);
- `training_log.jsonl`: one JSON line per epoch (see `draw_tf.training.TrainingLog`);
- `result.json`: the shipped epoch and its validation negative ELBO in nats per image, or for a
  classifier its validation and test errors.

`python -m draw_tf.pretrained_models ship --model_dir=RUN --name=mnist --data_dir=...` ships the
best epoch of a `draw-tf train` run (lowest validation loss, kept by the run as
`best-epoch-NNNN.weights.h5`; the run may keep training), or the best epoch of a `draw-tf train_classifier` run
(`--data_dir` then holds the MNIST digits its errors are measured on): every file is written to a temporary name and renamed
into place, the weights last. `python -m draw_tf.pretrained_models restore --name=mnist
--model_dir=NEW` turns the shipped model back into a run that `draw-tf train` continues (with a
fresh Adam), for a long training resumed on another machine; with `--source=DIR`, a run that
`ship --destination=DIR` kept outside the package (an unfinished one, not for users yet).
"""

from __future__ import annotations

import json
import math
import os

from draw_tf import plateau  # plain Python

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "pretrained")
WEIGHTS_FILE = "model.weights.h5"
CONFIG_FILE = "config.json"
LOG_FILE = "training_log.jsonl"
RESULT_FILE = "result.json"


KINDS = ("generator", "classifier")  # a `Draw` model (draw-tf train), a `DrawClassifier` (train_classifier)


def available(kind=None):
    """Names of the pretrained models in this installation, sorted; with `kind`, of that kind only
    ("generator": `Draw` models, which sample; "classifier": cluttered-MNIST classifiers)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}; expected one of {list(KINDS)}.")
    if not os.path.isdir(PRETRAINED_DIR):
        return []
    names = sorted(
        name for name in os.listdir(PRETRAINED_DIR)
        if os.path.isfile(os.path.join(PRETRAINED_DIR, name, WEIGHTS_FILE))
    )
    return [name for name in names if kind is None or _kind(os.path.join(PRETRAINED_DIR, name)) == kind]


def _kind(directory):
    with open(os.path.join(directory, CONFIG_FILE)) as f:
        return "generator" if "model" in json.load(f) else "classifier"


def _model_dir(name, kind=None):
    names = available(kind)
    if not isinstance(name, str) or name not in names:
        what = f"pretrained {kind}" if kind else "pretrained model"
        raise ValueError(f"Unknown {what} {name!r}; available: {', '.join(names) or 'none'}.")
    return os.path.join(PRETRAINED_DIR, name)


def info(name):
    """What is known of a pretrained model: its `result.json` (epoch, validation negative ELBO...)."""
    with open(os.path.join(_model_dir(name), RESULT_FILE)) as f:
        return json.load(f)


def training_log(name):
    """The per-epoch training records of a pretrained model (list of dicts)."""
    from draw_tf.training import read_training_log

    return read_training_log(os.path.join(_model_dir(name), LOG_FILE))


def pretrained(name="mnist", seed=None):
    """A trained model from the weights inside the package (no download): a `Draw` model (e.g.
    "mnist") or a `DrawClassifier` (e.g. "cluttered_mnist").

    `seed` seeds a `Draw` model's posterior noise of `call`, `reconstruct` and `evaluate`. Raises
    ValueError naming the available models for an unknown name.
    """
    return _load(_model_dir(name), seed)


def _load(directory, seed=None):
    """The model stored in `directory` (a shipped model's folder, or one written by `ship --destination`)."""
    with open(os.path.join(directory, CONFIG_FILE)) as f:
        stored = json.load(f)
    if "model" in stored:
        from draw_tf.config import DrawConfig
        from draw_tf.model import Draw

        model = Draw(DrawConfig.from_dict(stored["model"]), seed=seed)
    else:
        from draw_tf.classifier import DrawClassifier

        model = DrawClassifier(stored["config"])
    model.load_weights(os.path.join(directory, WEIGHTS_FILE))
    return model


def ship(model_dir, name, destination=PRETRAINED_DIR, data_dir=None):
    """Copies the best epoch of the `draw-tf train` run in `model_dir` into `destination/<name>/`
    with its config, training log (up to that epoch) and result; returns the result dict.

    The best epoch is the run's `best-epoch-NNNN.weights.h5` (see `training.BestEpochWeights`);
    a run without one (it predates them, has no new best since, or trains without validation)
    ships its latest checkpoint, which must then be at the end of the log's last epoch. The result also records the negative
    ELBO of the first 500 images of the run's held-out split (posterior noise of seed 0), the
    number a test of the shipped weights checks them against.
    """
    from draw_tf import data
    from draw_tf.model import Draw
    from draw_tf.training import (
        CONFIG_FILE as RUN_CONFIG, TRAINING_LOG, _TrainingState, best_epoch_files, read_model_config,
        read_training_log, save_weights_atomic, write_json_atomic, write_training_log,
    )
    from draw_tf.weight_average import load_weight_average

    model = Draw(read_model_config(model_dir), seed=0)
    best_files = best_epoch_files(model_dir)
    if best_files:
        path, epoch = best_files[0]
        try:
            model.load_weights(path)
        except OSError as e:
            raise ValueError(f"{path!r} could not be read ({e}): did the run replace it just now? Ship again.") from e
    else:
        state = _TrainingState(model, model_dir)
        restored = state.restore(partial=True)
        if restored is None:
            raise ValueError(f"{model_dir!r} has no finished epoch (no best-epoch weights, no checkpoint): nothing to ship.")
        load_weight_average(model, restored)  # a run with --weight_average ships its average
        epoch, step = int(state.epoch.numpy()), int(state.step.numpy())
    log = read_training_log(os.path.join(model_dir, TRAINING_LOG))  # after the weights: it has their epoch by then
    if not best_files and (step != 0 or not log or epoch != log[-1]["epoch"]):
        raise ValueError(
            f"{model_dir!r}'s latest checkpoint holds {epoch} finished epochs and {step} steps of the next, its log "
            f"{log[-1]['epoch'] if log else 0} epochs, and the run has no best-epoch weights: ship at the end of an "
            "epoch, with the run stopped."
        )
    shipped_log = [r for r in log if r["epoch"] <= epoch]
    if not shipped_log or shipped_log[-1]["epoch"] != epoch:
        raise ValueError(f"{model_dir!r}'s {TRAINING_LOG} has no record of epoch {epoch}, the epoch of the weights to ship.")
    row = shipped_log[-1]
    with open(os.path.join(model_dir, RUN_CONFIG)) as f:
        run_config = json.load(f)
    dataset = run_config["dataset"]
    held_out = data.held_out_split(dataset)
    images = next(iter(data.make_dataset(dataset, held_out, 500, data_dir, shuffle=False, image_shape=model.config.image_shape)))
    first_500 = float(model.reconstruct(images)["negative_elbo"].numpy().mean())
    best = min(log, key=lambda r: r["val_loss"] if math.isfinite(r.get("val_loss", math.nan)) else math.inf)
    result = {
        "name": name,
        "epoch": row["epoch"],
        "validation_negative_elbo": row.get("val_loss"),
        "validation_reconstruction": row.get("val_reconstruction"),
        "validation_kl": row.get("val_kl"),
        "best_epoch": best["epoch"],
        "best_validation_negative_elbo": best.get("val_loss"),
        "run_epochs": log[-1]["epoch"],
        "dataset": dataset,
        "split": held_out,
        f"first_500_{held_out}_negative_elbo": first_500,
        "train_hours": round(row.get("total_wall_seconds", 0.0) / 3600.0, 2),
        "units": "nats per image (negative ELBO, analytic KL, one posterior sample)",
    }
    target = os.path.join(destination, name)
    os.makedirs(target, exist_ok=True)
    write_json_atomic(os.path.join(target, CONFIG_FILE), run_config)
    write_training_log(os.path.join(target, LOG_FILE), shipped_log)
    write_json_atomic(os.path.join(target, RESULT_FILE), result)
    save_weights_atomic(model, os.path.join(target, WEIGHTS_FILE))
    return result


def ship_classifier(model_dir, name, destination=PRETRAINED_DIR, data_dir=None):
    """Copies the DRAW classifier of the `draw-tf train_classifier` run in `model_dir` into
    `destination/<name>/`: the weights of its epoch with the lowest validation error so far
    (`best.weights.h5`), its config, its log (as JSON lines) and a result with that epoch's
    validation and test errors, measured here on the run's scenes (`data_dir`: the MNIST digits).
    The weights and log are read once (`cluttered.measure_run`), so a run that is still training
    cannot put one epoch's weights beside another epoch's result."""
    from draw_tf import cluttered
    from draw_tf.training import save_weights_atomic, write_json_atomic, write_training_log

    with open(os.path.join(model_dir, CONFIG_FILE)) as f:
        stored = json.load(f)
    if stored.get("kind") != "draw":
        raise ValueError(f"{model_dir!r} holds a {stored.get('kind')!r} classifier; only DRAW classifiers ship.")
    measured, measured_model, log = cluttered.measure_run(model_dir, data_dir)
    result = {
        "name": name, **measured, "kind": "classifier",
        "units": "classification error (fraction) on 100x100 cluttered MNIST scenes, one per digit",
    }
    run_result = os.path.join(model_dir, RESULT_FILE)
    if os.path.isfile(run_result):  # a warm restart (train_classifier --init_weights) says where it started
        with open(run_result) as f:
            init_weights = json.load(f).get("init_weights")
        if init_weights is not None:
            result["init_weights"] = init_weights
    target = os.path.join(destination, name)
    os.makedirs(target, exist_ok=True)
    write_json_atomic(os.path.join(target, CONFIG_FILE), stored)
    # 1-based epochs, as draw-tf train logs them
    write_training_log(os.path.join(target, LOG_FILE), [{**row, "epoch": int(row["epoch"]) + 1} for row in log])
    write_json_atomic(os.path.join(target, RESULT_FILE), result)
    from draw_tf.classifier import DrawClassifier

    model = DrawClassifier(stored["config"])  # not compiled: the file gets the weights, not Adam's moments
    model.set_weights(measured_model.get_weights())
    save_weights_atomic(model, os.path.join(target, WEIGHTS_FILE))
    return result


def restore_run(name, model_dir, source=None):
    """Makes `model_dir` a `draw-tf train` run that continues the shipped model `name`: its config,
    its training log, and a checkpoint holding its weights at its last epoch with a FRESH Adam
    (the optimizer's moments are not shipped; its step counter continues from the log, and its
    bias correction restarts at that step, as a new Adam's would: `draw_tf.optimizer`). For a
    long run resumed on a machine that does not have the run's own checkpoints. `source`: the
    folder `ship --destination` wrote `name` into, for a run kept outside the package (an
    unfinished one); default the package's shipped models. Refuses a `model_dir` that already
    holds checkpoints."""
    import shutil

    import tensorflow as tf

    from draw_tf.optimizer import adam_with_decay
    from draw_tf.training import (
        CHECKPOINT_DIR, CONFIG_FILE as RUN_CONFIG, TRAINING_LOG, _TrainingState, read_training_log, utc_timestamp,
        write_training_log,
    )

    directory = _model_dir(name, "generator") if source is None else _stored_dir(name, source)
    if tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR)):
        raise FileExistsError(f"{model_dir!r} already holds checkpoints: resume it with draw-tf train instead.")
    with open(os.path.join(directory, CONFIG_FILE)) as f:
        run_config = json.load(f)
    log = read_training_log(os.path.join(directory, LOG_FILE))
    model = _load(directory, seed=0)
    model.compile(optimizer=adam_with_decay(_rate_after(log, run_config)))
    model.optimizer.build(model.trainable_variables)
    steps = int(log[-1]["steps"])
    model.optimizer.iterations.assign(steps)
    os.makedirs(model_dir, exist_ok=True)
    shutil.copyfile(os.path.join(directory, CONFIG_FILE), os.path.join(model_dir, RUN_CONFIG))
    restored = {
        "from": name if source is None else f"{os.path.basename(os.path.normpath(source))}/{name}",
        "optimizer": "fresh Adam", "moments_start": steps,
        "time": utc_timestamp(),
    }
    # the log as shipped, its last epoch saying that the run was restored after it
    write_training_log(os.path.join(model_dir, TRAINING_LOG), log[:-1] + [{**log[-1], "restored_after": restored}])
    state = _TrainingState(model, model_dir)
    state.moments_start.assign(steps)  # Adam's bias correction restarts with its moments (draw_tf.optimizer)
    path = state.save(int(log[-1]["epoch"]))
    return {"model_dir": model_dir, "checkpoint": path, "epoch": log[-1]["epoch"], "optimizer": "fresh Adam"}


def _rate_after(log, run_config):
    """The constant learning rate a run had after the last epoch of its training log: that epoch's
    rate, halved if the run's `lr_halving` rule fired at it (`draw_tf.plateau`)."""
    if run_config.get("lr_decay", 1.0) != 1.0:  # a decaying rate's schedule restarts from its start
        return run_config.get("learning_rate", 1e-3)
    rate = log[-1].get("learning_rate", run_config.get("learning_rate", 1e-3))
    rule = plateau.check_rule(run_config.get("lr_halving"))
    if rule is not None and plateau.progress_too_slow(log, *rule):
        rate /= 2
    return rate


def _stored_dir(name, source):
    """`source/name`, checked to hold a generator written by `ship --destination=source`."""
    directory = os.path.join(source, name)
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE, LOG_FILE) if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise ValueError(
            f"No model {name!r} in {source!r}: expected {', '.join(missing)} in {directory!r} (written by ship --destination)."
        )
    if _kind(directory) != "generator":
        raise ValueError(f"{directory!r} holds a classifier: restore continues draw-tf train runs only.")
    return directory


def _is_classifier_run(model_dir):
    """Whether `model_dir` is a `draw-tf train_classifier` run (its config.json names a kind)."""
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return "kind" in json.load(f)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m draw_tf.pretrained_models", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ship_cmd = commands.add_parser(
        "ship", help="ship the best epoch of a draw-tf train or train_classifier run"
    )
    ship_cmd.add_argument("--model_dir", required=True, help="the run's model_dir (draw-tf train or train_classifier)")
    ship_cmd.add_argument("--name", required=True, help="the pretrained model's name, e.g. mnist")
    ship_cmd.add_argument("--destination", default=PRETRAINED_DIR, help="default: draw_tf/assets/pretrained")
    ship_cmd.add_argument("--data_dir", default=None, help="where the run's dataset is (tfds data_dir, or the MNIST IDX files)")
    restore_cmd = commands.add_parser("restore", help="continue a shipped model's training in a new model_dir")
    restore_cmd.add_argument("--name", required=True, help="the shipped model, e.g. mnist")
    restore_cmd.add_argument("--model_dir", required=True, help="a new model_dir for draw-tf train")
    restore_cmd.add_argument(
        "--source", default=None, help="the folder a run was shipped into with ship --destination (default: the package's)"
    )
    args = parser.parse_args(argv)
    from draw_tf.cli import EXPECTED_ERRORS, _fail, _raised_by_draw_tf

    try:
        if args.command == "ship":
            shipper = ship_classifier if _is_classifier_run(args.model_dir) else ship
            result = shipper(args.model_dir, args.name, args.destination, args.data_dir)
        else:
            result = restore_run(args.name, args.model_dir, args.source)
    except EXPECTED_ERRORS as e:  # bad input: one line on stderr, exit status 2, as draw-tf's commands
        if not _raised_by_draw_tf(e):
            raise
        _fail(f"{parser.prog} {args.command}", e)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
