"""Every notebook in colab/ runs top to bottom in a real Jupyter kernel, with small parameters
injected after its `parameters` cell (as papermill does), against the embedded data. The
notebooks run at the same time, each in its own kernel and directory (most of a run is a kernel
importing TensorFlow and tracing, much of it on one core)."""

import asyncio
import glob
import os
import re

import nbformat
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "colab", "*.ipynb")))
# Small sizes for CI; the notebooks' own defaults are for real use. (quickstart validates on all 1,000
# embedded images every epoch: batches of 100 make that 10 calls instead of 50.)
PARAMETERS = {
    "quickstart.ipynb": {"PRESET": "quick", "DATASET": "embedded", "EPOCHS": 1, "STEPS_PER_EPOCH": 1, "BATCH_SIZE": 100},
    "attention.ipynb": {},  # uses the pretrained model: nothing to shrink
    "export.ipynb": {},
}


def test_every_notebook_is_known_and_stored_without_outputs():
    assert set(NOTEBOOKS) == set(PARAMETERS)
    for name in NOTEBOOKS:
        nb = nbformat.read(os.path.join(REPO, "colab", name), as_version=4)
        nbformat.validate(nb)
        assert f"colab/{name})" in nb.cells[0].source  # the "Open in Colab" badge points at this file
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), name
        parameters = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(parameters) == 1, name
        defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*=", parameters[0].source, re.MULTILINE))
        assert set(PARAMETERS[name]) <= defined, f"{name}: injects {set(PARAMETERS[name]) - defined} it does not define"


def _client(name, directory):
    from nbclient import NotebookClient

    nb = nbformat.read(os.path.join(REPO, "colab", name), as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = "\n".join(f"{key} = {value!r}" for key, value in PARAMETERS[name].items())
    if injected:  # (an empty cell would not run, and the test wants every cell run)
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}))
    return NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(directory)}})


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """{name: (executed notebook, the exception that stopped it or None, where it was written)}."""
    directories = {name: tmp_path_factory.mktemp(name.split(".")[0]) for name in NOTEBOOKS}
    clients = {name: _client(name, directories[name]) for name in NOTEBOOKS}

    async def run_all():
        return await asyncio.gather(*(c.async_execute() for c in clients.values()), return_exceptions=True)

    results = asyncio.run(run_all())
    out = {}
    for (name, client), result in zip(clients.items(), results):
        path = str(directories[name] / name)
        nbformat.write(client.nb, path)  # the executed notebook, to read when a cell fails
        out[name] = (client.nb, result if isinstance(result, BaseException) else None, path)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(executed, name):
    nb, error, path = executed[name]
    if error is not None:
        raise AssertionError(f"{name} failed (executed notebook: {path})") from error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code"), "a cell did not run"
    shown = [o.data for o in outputs if o.output_type == "display_data"]
    assert any("image/gif" in d for d in shown), f"{name} shows no drawing animation"
    assert sum("image/png" in d for d in shown) >= 1, f"{name} shows no picture"
