"""Every notebook in colab/ runs top to bottom in a real Jupyter kernel, with small parameters
injected after its `parameters` cell (as papermill does), against the embedded data."""

import glob
import os

import nbformat
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "colab", "*.ipynb")))
# Small sizes for CI; the notebooks' own defaults are for real use.
PARAMETERS = {
    "quickstart.ipynb": {"PRESET": "quick", "DATASET": "embedded", "EPOCHS": 1, "STEPS_PER_EPOCH": 3, "BATCH_SIZE": 20},
    "attention.ipynb": {"TRAIN_STEPS": 3},
    "export.ipynb": {"TRAIN_STEPS": 3},
}


def test_every_notebook_is_known_and_stored_without_outputs():
    assert set(NOTEBOOKS) == set(PARAMETERS)
    for name in NOTEBOOKS:
        nb = nbformat.read(os.path.join(REPO, "colab", name), as_version=4)
        nbformat.validate(nb)
        assert f"colab/{name})" in nb.cells[0].source  # the "Open in Colab" badge points at this file
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), name
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(os.path.join(REPO, "colab", name), as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = "\n".join(f"{key} = {value!r}" for key, value in PARAMETERS[name].items())
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
    finally:
        nbformat.write(nb, str(tmp_path / name))  # the executed notebook, to read when a cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o.data for o in outputs if o.output_type == "display_data"]
    assert any("image/gif" in d for d in shown), f"{name} shows no drawing animation"
    assert sum("image/png" in d for d in shown) >= 1, f"{name} shows no picture"
