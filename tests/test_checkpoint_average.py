"""benchmarks/checkpoint_average: the mean of a run's last n stored weight averages (or raw
weights) is what gets measured, on the same noise for every n."""

import json

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import checkpoint_average
from draw_tf import data, get_preset
from draw_tf.model import Draw
from draw_tf.weight_average import CHECKPOINT_KEY


def write_checkpoints(run_dir, archive, model, weights_by_step):
    """A model_dir's config.json, and one archived checkpoint per step whose weight average is the
    given weights and whose raw weights are their negation."""
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"model": model.config.to_dict()}))
    for step, weights in weights_by_step.items():
        averages = [tf.Variable(w) for w in weights]
        for v, w in zip(model.trainable_variables, weights):
            v.assign(-w)
        tf.train.Checkpoint(model=model, **{CHECKPOINT_KEY: averages}).write(str(archive / f"ckpt-{step}"))


def test_the_last_n_averages_are_averaged_and_measured_on_the_same_noise(tmp_path):
    model = Draw(get_preset("quick"))
    base = [v.numpy() for v in model.trainable_variables]
    rng = np.random.default_rng(0)
    weights_by_step = {
        step: [w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in base] for step in (500, 1000, 1500)
    }
    archive = tmp_path / "archive"
    archive.mkdir()
    write_checkpoints(tmp_path / "run", archive, model, weights_by_step)

    def run(*flags):
        return checkpoint_average.main([
            f"--run={tmp_path / 'run'}", f"--checkpoints={archive}", "--dataset=embedded",
            "--batch_size=50", "--max_batches=2", *flags,
        ])

    summary = run("--last=1,2")
    by_n = {r["last"]: r for r in summary["results"]}
    assert by_n[1]["epochs"] == [3] and by_n[2]["epochs"] == [2, 3]
    assert summary["num_images"] == 100

    # Measured independently: the mean of the last two checkpoints' averages, the same seeded noise.
    batches = [x for i, x in enumerate(data.make_dataset("embedded", "validation", 50, shuffle=False)) if i < 2]
    for v, a, b in zip(model.trainable_variables, weights_by_step[1000], weights_by_step[1500]):
        v.assign((a + b) / 2)
    assert by_n[2]["negative_elbo"] == pytest.approx(checkpoint_average.negative_elbo(model, batches, 0), rel=1e-6)
    for v, w in zip(model.trainable_variables, weights_by_step[1500]):
        v.assign(w)
    assert by_n[1]["negative_elbo"] == pytest.approx(checkpoint_average.negative_elbo(model, batches, 0), rel=1e-6)
    assert by_n[1]["negative_elbo"] != by_n[2]["negative_elbo"]

    # --weights=raw reads the trained weights (here the negated averages): another number.
    raw = run("--last=1", "--weights=raw")["results"][0]["negative_elbo"]
    for v, w in zip(model.trainable_variables, weights_by_step[1500]):
        v.assign(-w)
    assert raw == pytest.approx(checkpoint_average.negative_elbo(model, batches, 0), rel=1e-6)

    with pytest.raises(SystemExit, match="at most 3 checkpoints"):
        run("--last=4")
