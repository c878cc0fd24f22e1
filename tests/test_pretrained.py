"""The pretrained models shipped inside the package: they load offline in a fresh process, their
likelihood is the one recorded beside them, their samples look like digits, and the wheel carries them."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from draw_tf import pretrained_models

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_mnist = pytest.mark.skipif(
    "mnist" not in pretrained_models.available(), reason="no pretrained 'mnist' weights in draw_tf/assets/pretrained"
)


def test_unknown_name_lists_the_available_models():
    with pytest.raises(ValueError, match=r"Unknown pretrained model 'nope'; available: "):
        pretrained_models.pretrained("nope")


@needs_mnist
def test_files_beside_the_weights_agree():
    info = pretrained_models.info("mnist")
    log = pretrained_models.training_log("mnist")
    assert log[-1]["epoch"] == info["epoch"]
    assert info["validation_negative_elbo"] == pytest.approx(log[-1]["val_loss"])
    for record in log:
        assert {"epoch", "loss", "val_loss", "val_kl", "learning_rate", "wall_seconds", "command", "code_version"} <= set(record)
    assert [r["epoch"] for r in log] == list(range(1, len(log) + 1))


@needs_mnist
def test_loads_in_a_fresh_process_and_has_its_recorded_likelihood(shared_tfds_dir):
    # A fresh interpreter (nothing cached), no network: the weights come from the package.
    script = f"""
import json, draw_tf
from draw_tf import data
model = draw_tf.pretrained("mnist", seed=0)
images = next(iter(data.make_dataset("binarized_mnist", "validation", 500, {shared_tfds_dir!r}, shuffle=False)))
out = model.reconstruct(images)
print(json.dumps({{"nll": float(out["negative_elbo"].numpy().mean()), "n": int(images.shape[0])}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["n"] == 500
    recorded = pretrained_models.info("mnist")["first_500_validation_negative_elbo"]
    assert abs(got["nll"] - recorded) < 0.5, (got, recorded)


@needs_mnist
def test_samples_have_the_ink_of_real_digits(shared_tfds_dir):
    from draw_tf import data

    model = pretrained_models.pretrained("mnist")
    samples = model.sample(200, seed=0, return_sequences=False)["images"].numpy()
    real = next(iter(data.make_dataset("binarized_mnist", "validation", 1000, shared_tfds_dir, shuffle=False))).numpy()
    # Ink: the mean pixel of samples is the data's (about 0.13) within a quarter of it.
    assert abs(samples.mean() - real.mean()) < 0.25 * real.mean(), (samples.mean(), real.mean())
    # Strokes, not blobs: most pixels are confidently on or off, as in the binary data (the mean
    # images have soft stroke edges: 6.9% of pixels in (0.2, 0.8) for the epoch-16 weights).
    uncertain = np.mean((samples > 0.2) & (samples < 0.8))
    assert uncertain < 0.10, uncertain
    # Every sample draws something, and no sample floods the image.
    ink = samples.reshape(len(samples), -1).mean(axis=1)
    assert np.all(ink > 0.02) and np.all(ink < 0.45), (ink.min(), ink.max())


@needs_mnist
def test_the_wheel_carries_the_weights(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), REPO],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = [p for p in os.listdir(tmp_path) if p.endswith(".whl")]
    names = set(zipfile.ZipFile(os.path.join(tmp_path, wheel)).namelist())
    for name in ("config.json", "model.weights.h5", "training_log.jsonl", "result.json"):
        assert f"draw_tf/assets/pretrained/mnist/{name}" in names, name


@pytest.mark.slow
def test_ship_load_and_continue_a_run(tmp_path, monkeypatch):
    """ship() a run, load it as a pretrained model (same weights), then restore_run() it into a new
    model_dir that draw-tf train continues at the next epoch."""
    from draw_tf import get_preset, training

    monkeypatch.setattr(pretrained_models, "PRETRAINED_DIR", str(tmp_path / "assets"))
    config = get_preset("quick", time_steps=2, encoder_size=8, decoder_size=8, z_size=2)
    run = dict(dataset="embedded", batch_size=20, steps_per_epoch=2, verbose=0, seed=1)
    model, _ = training.train(config, str(tmp_path / "run"), epochs=2, **run)
    result = pretrained_models.ship(str(tmp_path / "run"), "tiny", str(tmp_path / "assets"))
    assert result["epoch"] == 2 and pretrained_models.available() == ["tiny"]
    loaded = pretrained_models.pretrained("tiny")
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    restored = pretrained_models.restore_run("tiny", str(tmp_path / "continued"))
    assert restored["epoch"] == 2
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        pretrained_models.restore_run("tiny", str(tmp_path / "continued"))
    training.train(config, str(tmp_path / "continued"), epochs=3, **run)
    log = training.read_training_log(str(tmp_path / "continued" / training.TRAINING_LOG))
    assert [r["epoch"] for r in log] == [1, 2, 3] and log[-1]["steps"] == 6
    assert log[1]["restored_after"]["optimizer"] == "fresh Adam" and log[1]["restored_after"]["moments_start"] == 4
    # an unfinished run kept outside the package: shipped to a folder of its own, restored from it
    kept = str(tmp_path / "kept")
    pretrained_models.ship(str(tmp_path / "continued"), "unfinished", kept)
    assert pretrained_models.available() == ["tiny"]  # not offered to users
    shipped_log = os.path.join(kept, "unfinished", pretrained_models.LOG_FILE)
    rows = training.read_training_log(shipped_log)
    rows[-1]["steps"] = 18_000  # as if each epoch had been 6,000 steps, as long runs' are (mnist: 500)
    with open(shipped_log, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    pretrained_models.main(["restore", "--name=unfinished", f"--source={kept}", f"--model_dir={tmp_path / 'again'}"])
    again, _ = training.train(config, str(tmp_path / "again"), epochs=4, **run)
    log = training.read_training_log(str(tmp_path / "again" / training.TRAINING_LOG))
    assert [r["epoch"] for r in log] == [1, 2, 3, 4] and log[-1]["steps"] == 18_002
    # Its 2 steps with fresh moments are a new Adam's, each at most about the rate (1e-3) in every
    # weight, not the 3-4 times more of an Adam whose bias correction is off at step 18,000
    # (draw_tf.optimizer); the step counter went on from the shipped log.
    assert again.optimizer.moments_start == 18_000 and int(again.optimizer.iterations) == 18_002
    start = pretrained_models._load(os.path.join(kept, "unfinished"))
    moved = max(np.abs(a.numpy() - b.numpy()).max() for a, b in zip(again.trainable_weights, start.trainable_weights))
    assert 0 < moved <= 2 * 1e-3 * 1.05
    resumed, _ = training.train(config, str(tmp_path / "again"), epochs=5, **run)  # its own checkpoint keeps the restart
    assert resumed.optimizer.moments_start == 18_000 and int(resumed.optimizer.iterations) == 18_004


def test_restore_names_what_is_missing_and_writes_nothing(tmp_path, capsys):
    kept = tmp_path / "kept"
    (kept / "half").mkdir(parents=True)
    (kept / "half" / pretrained_models.CONFIG_FILE).write_text(json.dumps({"model": {}}))
    for name, message in (("absent", "expected config.json, model.weights.h5, training_log.jsonl"),
                          ("half", "expected model.weights.h5, training_log.jsonl")):
        with pytest.raises(ValueError, match=f"No model '{name}' in .*{message}"):
            pretrained_models.restore_run(name, str(tmp_path / "run"), source=str(kept))
    with pytest.raises(ValueError, match="Unknown pretrained generator 'cluttered_mnist'; available: "):
        pretrained_models.restore_run("cluttered_mnist", str(tmp_path / "run"))
    with pytest.raises(SystemExit) as exit_:
        pretrained_models.main(["restore", "--name=absent", f"--source={kept}", f"--model_dir={tmp_path / 'run'}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m draw_tf.pretrained_models restore: error: No model 'absent' in ")
    assert not (tmp_path / "run").exists()


def test_ship_a_classifier_and_load_it(tmp_path, monkeypatch, capsys):
    """`python -m draw_tf.pretrained_models ship` on a train_classifier run ships its best epoch; it
    loads as a DrawClassifier with the test error recorded beside it."""
    from test_mnist_scenes import write_mnist_dir

    from draw_tf import DrawClassifier, cluttered, mnist_scenes

    data_dir = str(tmp_path / "mnist")
    write_mnist_dir(data_dir, n=50, with_train=True)
    monkeypatch.setattr(mnist_scenes, "FULL_TRAIN_SIZE", 40)  # 40 train, 10 validation, 50 test digits
    monkeypatch.setattr(pretrained_models, "PRETRAINED_DIR", str(tmp_path / "assets"))
    run = str(tmp_path / "run")
    cluttered.train_classifier(run, "draw", data_dir=data_dir, epochs=2, batch_size=8, verbose=0,
                               overrides={"time_steps": 2, "lstm_size": 16})
    pretrained_models.main(["ship", f"--model_dir={run}", "--name=tiny", f"--destination={tmp_path / 'assets'}",
                            f"--data_dir={data_dir}"])
    result = json.loads(capsys.readouterr().out)
    assert pretrained_models.available() == pretrained_models.available("classifier") == ["tiny"]
    assert pretrained_models.available("generator") == []
    model = pretrained_models.pretrained("tiny")
    assert isinstance(model, DrawClassifier) and model.config.lstm_size == 16
    test_x, test_y = cluttered.held_out_scenes(data_dir, "test")
    assert np.mean(np.argmax(model.predict(test_x, verbose=0), -1) != test_y) == pytest.approx(result["test_error"])
    assert result["test_scenes"] == 50 and result["epochs_trained"] == 2 and result["epoch"] in (1, 2)
    assert [r["epoch"] for r in pretrained_models.training_log("tiny")] == [1, 2]
    assert pretrained_models.info("tiny") == result
