"""The TF Serving SavedModel: loaded by TensorFlow alone in a fresh process, listed and run by
`saved_model_cli`, equal to the Keras model; versions written whole and never overwritten."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw
from draw_tf.export import export_saved_model, existing_versions
from draw_tf.export.saved_model import SIGNATURES
from draw_tf.files import current_umask

SEEDS = np.array([3, 5, 3], np.int64)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_config, perturb_weights):
    model = perturb_weights(Draw(tiny_config, seed=0))  # not the initial weights: every head matters
    base = str(tmp_path_factory.mktemp("serving"))
    return model, base, export_saved_model(model, base, "draw")


def _inputs(model):
    cfg = model.config
    rng = np.random.default_rng(1)
    return {
        "seed": SEEDS,
        "z": rng.standard_normal((2, cfg.time_steps, cfg.z_size)).astype(np.float32),
        "images": (rng.random((4, *cfg.image_shape)) > 0.5).astype(np.float32),
    }


def test_fresh_process_with_tensorflow_alone_matches_keras(exported, tmp_path):
    model, _, path = exported
    inputs = _inputs(model)
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(
        f"""
        import sys, numpy as np, tensorflow as tf
        loaded = tf.saved_model.load({path!r})
        inputs = dict(np.load({str(tmp_path / "inputs.npz")!r}))
        arg = {{"serving_default": "seed", "sample": "seed", "sample_sequences": "seed", "generate": "z",
               "generate_sequences": "z", "reconstruct": "images"}}
        results = {{}}
        for name, fn in loaded.signatures.items():
            for key, value in fn(**{{arg[name]: tf.constant(inputs[arg[name]])}}).items():
                results[name + "/" + key] = value.numpy()
        assert not any(m.startswith("draw_tf") for m in sys.modules), "the SavedModel must not need draw_tf"
        np.savez({str(tmp_path / "outputs.npz")!r}, **results)
        print(sorted(loaded.signatures))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(sorted(SIGNATURES))
    out = dict(np.load(tmp_path / "outputs.npz"))

    # sample: image i comes from seed i alone (rows 0 and 2 share a seed)
    keras_sample = model.generate(model.noise_from_seeds(SEEDS))
    for name in ("serving_default", "sample", "sample_sequences"):
        np.testing.assert_allclose(out[f"{name}/images"], keras_sample["images"].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["sample/images"][0], out["sample/images"][2], atol=1e-6)  # float rounding only
    assert not np.allclose(out["sample/images"][0], out["sample/images"][1])
    for key in ("canvases", "write_windows"):
        np.testing.assert_allclose(out[f"sample_sequences/{key}"], keras_sample[key].numpy(), atol=1e-4)

    keras_generate = model.generate(inputs["z"])
    np.testing.assert_allclose(out["generate/images"], keras_generate["images"].numpy(), atol=1e-5)
    for key in ("images", "canvases", "write_windows"):
        np.testing.assert_allclose(out[f"generate_sequences/{key}"], keras_generate[key].numpy(), atol=1e-4)

    images = inputs["images"]
    keras_rec = model.reconstruct(images, noise=model.noise_from_seeds(np.zeros(len(images), np.int64)))
    np.testing.assert_allclose(out["reconstruct/reconstructions"], keras_rec["images"].numpy(), atol=1e-5)
    np.testing.assert_allclose(out["reconstruct/negative_elbo"], keras_rec["negative_elbo"].numpy(), rtol=1e-5)
    assert set(out) >= {"sample_sequences/write_windows", "reconstruct/negative_elbo"}


def test_saved_model_cli_lists_and_runs_the_signatures(exported, tmp_path):
    model, _, path = exported
    cfg = model.config
    show = subprocess.run(["saved_model_cli", "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in show.stdout
    assert f"shape: (-1, {cfg.time_steps}, {cfg.z_size})" in show.stdout  # generate's z, free batch
    assert "dtype: DT_INT64" in show.stdout  # the seed

    np.save(tmp_path / "seeds.npy", SEEDS)  # int64, the signature's dtype
    run = subprocess.run(
        ["saved_model_cli", "run", "--dir", path, "--tag_set", "serve", "--signature_def", "sample",
         "--inputs", f"seed={tmp_path / 'seeds.npy'}", "--outdir", str(tmp_path), "--overwrite"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    images = np.load(tmp_path / "images.npy")
    expected = model.generate(model.noise_from_seeds(SEEDS))["images"].numpy()
    np.testing.assert_allclose(images, expected, atol=1e-5)


def test_reconstruct_signature_rejects_bad_requests(exported):
    model, _, path = exported
    reconstruct = tf.saved_model.load(path).signatures["reconstruct"]
    cfg = model.config
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 1\]"):
        reconstruct(images=tf.fill([2, *cfg.image_shape], 255.0))
    # wrong image size: refused by the fixed input signature (TF Serving checks it before running)
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        reconstruct(images=tf.zeros([2, cfg.image_height + 1, cfg.image_width, cfg.channels]))


def test_versions_increase_and_are_never_overwritten(exported):
    model, base, first = exported
    model_path = os.path.join(base, "draw")
    before = sorted(os.listdir(first))
    assert first.endswith(os.path.join("draw", "1"))
    assert os.stat(first).st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700: a server user reads it
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_saved_model(model, base, "draw", version=1)
    assert sorted(os.listdir(first)) == before
    assert export_saved_model(model, base, "draw", version=7) == os.path.join(model_path, "7")
    assert export_saved_model(model, base, "draw") == os.path.join(model_path, "8")  # the highest + 1, not the count + 1
    assert existing_versions(model_path) == [1, 7, 8]
    assert not [n for n in os.listdir(model_path) if n.startswith(".tmp")]


def test_failed_export_leaves_no_version(exported, monkeypatch):
    model, base, _ = exported
    model_path = os.path.join(base, "draw")
    versions = existing_versions(model_path)

    def crash(*args):  # the process dies between writing the SavedModel and publishing it
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        export_saved_model(model, base, "draw")
    monkeypatch.undo()
    assert existing_versions(model_path) == versions
    assert not [n for n in os.listdir(model_path) if n.startswith(".tmp")]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"version": 0}, "version must be a positive integer"),
        ({"version": -3}, "version must be a positive integer"),
        ({"version": True}, "version must be a positive integer"),
        ({"model_name": "a/b"}, "model_name must be"),
        ({"model_name": ""}, "model_name must be"),
    ],
)
def test_bad_export_arguments(exported, tmp_path, kwargs, message):
    model = exported[0]
    with pytest.raises(ValueError, match=message):
        export_saved_model(model, str(tmp_path / "base"), **kwargs)
    assert not os.path.exists(tmp_path / "base")


def test_export_dir_that_is_a_file(exported, tmp_path):
    target = tmp_path / "serving"
    target.write_text("not a directory")
    with pytest.raises(ValueError, match="is a file"):
        export_saved_model(exported[0], str(target))
    assert target.read_text() == "not a directory"
