"""benchmarks/checkpoint_average: the mean of a run's last n stored weight averages (or raw
weights) is what gets measured, on the same noise for every n; mid-epoch checkpoints are refused."""

import json

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import checkpoint_average
from draw_tf import data, get_preset, training
from draw_tf.model import Draw
from draw_tf.weight_average import CHECKPOINT_KEY


def write_checkpoint(path, model, average, epoch, step_in_epoch=0):
    """A training checkpoint whose weight average is `average` and whose raw weights are its negation."""
    for v, w in zip(model.trainable_variables, average):
        v.assign(-w)
    tf.train.Checkpoint(
        model=model,
        epoch=tf.Variable(epoch, dtype=tf.int64),
        step_in_epoch=tf.Variable(step_in_epoch, dtype=tf.int64),
        **{CHECKPOINT_KEY: [tf.Variable(w) for w in average]},
    ).write(str(path))


def measured(model, weights, noise_key=0):
    for v, w in zip(model.trainable_variables, weights):
        v.assign(w)
    batches = data.make_dataset("embedded", "validation", 50, shuffle=False).take(2)
    return training.evaluate_nll(model, batches, noise_key=noise_key)["negative_elbo"]


def test_the_last_n_averages_are_averaged_and_measured_on_the_same_noise(tmp_path):
    model = Draw(get_preset("quick"))
    base = [v.numpy() for v in model.trainable_variables]
    rng = np.random.default_rng(0)
    averages = {epoch: [w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in base] for epoch in (1, 2, 3)}
    run_dir, archive = tmp_path / "run", tmp_path / "archive"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"model": model.config.to_dict()}))
    for epoch, average in averages.items():
        write_checkpoint(archive / f"ckpt-{epoch * 40}", model, average, epoch)

    def run(*flags):
        return checkpoint_average.main([
            f"--run={run_dir}", f"--checkpoints={archive}", "--dataset=embedded", "--batch_size=50", "--max_batches=2", *flags,
        ])

    summary = run("--last=1,2")
    by_n = {r["last"]: r for r in summary["results"]}
    assert by_n[1]["epochs"] == [3] and by_n[2]["epochs"] == [2, 3]
    assert summary["num_images"] == 100

    # Measured independently: the mean of the last two checkpoints' averages, on the same seeded noise.
    mean_of_two = [(a + b) / 2 for a, b in zip(averages[2], averages[3])]
    assert by_n[2]["negative_elbo"] == pytest.approx(measured(model, mean_of_two), rel=1e-6)
    assert by_n[1]["negative_elbo"] == pytest.approx(measured(model, averages[3]), rel=1e-6)
    assert by_n[1]["negative_elbo"] != by_n[2]["negative_elbo"]
    assert measured(model, averages[3], noise_key=1) != measured(model, averages[3], noise_key=0)  # the key is the noise
    assert 100 < by_n[1]["negative_elbo"] < 1000  # nats per 28x28 image

    # --weights=raw reads the trained weights (here the negated averages): another number.
    raw = run("--last=1", "--weights=raw")["results"][0]["negative_elbo"]
    assert raw == pytest.approx(measured(model, [-w for w in averages[3]]), rel=1e-6)

    with pytest.raises(SystemExit):
        run("--last=4")  # only 3 archived
    write_checkpoint(archive / "ckpt-130", model, averages[3], 3, step_in_epoch=10)
    with pytest.raises(SystemExit):
        run("--last=1")  # the newest is a mid-epoch checkpoint


@pytest.mark.parametrize("text", ["0", "a", "1,,2", ""])
def test_bad_counts_are_refused_with_what_was_expected(text):
    with pytest.raises(ValueError, match=r"--last: expected comma-separated counts of at least 1.*received"):
        checkpoint_average.parse_counts(text)
