"""benchmarks/iwae_bound: the K-sample bound of a shipped model over a split, in chunks that a
killed run resumes without recomputing or changing what it had, and that refuse other settings."""

import json

import pytest

from benchmarks import iwae_bound
from draw_tf import pretrained_models

pytestmark = pytest.mark.skipif("mnist" not in pretrained_models.available(), reason="no pretrained 'mnist' weights")


def run(output, *flags):
    return iwae_bound.main(["--dataset=embedded", "--chunk_images=10", f"--output={output}", *flags])


def chunks(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_a_resumed_run_keeps_its_chunks_adds_the_next_and_refuses_other_settings(tmp_path):
    output = tmp_path / "iwae.jsonl"
    first = run(output, "--num_samples=20", "--max_chunks=1")
    assert first["images_done"] == 10 and not first["complete"] and first["split_images"] == 1000
    before = chunks(output)
    second = run(output, "--num_samples=20", "--max_chunks=1")
    after = chunks(output)
    assert [c["chunk"] for c in after] == [0, 1]
    assert after[0] == before[0]  # not recomputed
    assert second["images_done"] == 20
    # The chunk's noise is seeded by its index: recomputing chunk 0 elsewhere gives the same numbers.
    again = run(tmp_path / "again.jsonl", "--num_samples=20", "--max_chunks=1")
    assert chunks(tmp_path / "again.jsonl")[0]["iwae_nll"] == before[0]["iwae_nll"]
    assert again["iwae_nll"] == first["iwae_nll"]
    # With 20 samples the bound is tighter than one sample's negative ELBO on average.
    assert second["iwae_nll"] < second["negative_elbo"]

    # A file made with other settings is refused before anything is computed or written.
    with pytest.raises(ValueError, match=r"holds chunks of num_samples=20, expected 10"):
        run(output, "--num_samples=10")
    assert chunks(output) == after
