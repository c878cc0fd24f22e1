"""Packaging: pyproject.toml is the one list of dependencies, the installed metadata matches it and
names the extras, the licence ships, the package data is everything under draw_tf/assets, and the
core install is enough for the commands (serving, notebooks and plots are extras)."""

import glob
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REINSTALL = 'the installed metadata is stale: run pip install -e ".[test]"'


@pytest.fixture(scope="module")
def project():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _name(requirement):
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def test_one_source_of_truth_for_dependencies(project):
    assert not os.path.exists(os.path.join(REPO, "setup.py"))
    assert not os.path.exists(os.path.join(REPO, "requirements.txt"))
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    core = {_name(r) for r in project["project"]["dependencies"]}
    # train, evaluate, sample and both exporters (export_tflite runs every file in LiteRT)
    assert {"tensorflow", "keras", "tensorflow-probability", "tf-keras", "tensorflow-datasets", "numpy", "pillow",
            "ai-edge-litert"} <= core
    extras = project["project"]["optional-dependencies"]
    assert {_name(r) for r in extras["serving"]} == {"tensorflow-serving-api", "grpcio"}
    assert {"nbclient", "nbformat", "ipykernel", "matplotlib"} <= {_name(r) for r in extras["notebooks"]}
    assert not core & {"tensorflow-serving-api", "matplotlib", "nbclient", "pytest"}
    assert "pytest" in {_name(r) for r in extras["test"]} and "draw-tf[serving,notebooks]" in extras["test"]
    assert project["project"]["scripts"] == {"draw-tf": "draw_tf.cli:run"}


def test_the_license_file(project):
    with open(os.path.join(REPO, "LICENSE")) as f:
        text = f.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert project["project"]["license"] == "Apache-2.0" and project["project"]["license-files"] == ["LICENSE"]


def test_the_installed_metadata_lists_the_extras(project):
    import draw_tf

    meta = importlib.metadata.metadata("draw-tf")
    assert meta["Version"] == project["project"]["version"] == draw_tf.__version__, REINSTALL
    assert {"serving", "notebooks", "test"} <= set(meta.get_all("Provides-Extra") or []), REINSTALL
    requires = importlib.metadata.requires("draw-tf")
    core = {_name(r) for r in requires if "extra ==" not in r}
    assert core == {_name(r) for r in project["project"]["dependencies"]}, REINSTALL
    serving = {_name(r) for r in requires if re.search(r"extra == .serving.", r)}
    assert serving == {"tensorflow-serving-api", "grpcio"}, REINSTALL
    assert meta["Requires-Python"] == project["project"]["requires-python"]
    scripts = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("draw-tf") == "draw_tf.cli:run", REINSTALL


def test_the_installed_tensorflow_is_in_the_supported_range(project):
    from packaging.requirements import Requirement

    for requirement in project["project"]["dependencies"]:
        req = Requirement(requirement)
        if req.name in ("tensorflow", "keras", "tf-keras", "tensorflow-probability"):
            installed = importlib.metadata.version(req.name)
            assert req.specifier.contains(installed), (req.name, installed, str(req.specifier))


def test_the_package_data_is_everything_under_assets(project):
    patterns = project["tool"]["setuptools"]["package-data"]["draw_tf"]
    assert "assets/*.npz" in patterns and "assets/pretrained/*/*" in patterns  # the shipped pretrained models too
    package = os.path.join(REPO, "draw_tf")
    shipped = {os.path.relpath(p, package) for pattern in patterns for p in glob.glob(os.path.join(package, pattern))}
    present = {
        os.path.relpath(os.path.join(root, name), package)
        for root, dirs, files in os.walk(os.path.join(package, "assets"))
        for name in files
        if "__pycache__" not in root and not name.startswith(".")
    }
    assert present <= shipped, present - shipped
    assert "assets/binarized_mnist_subset.npz" in shipped


def test_the_core_install_is_enough_for_the_commands():
    """With the extras' packages missing, the modules behind every command import (the serving
    client's gRPC part, the plots and the notebooks import theirs only when used)."""
    script = (
        "import sys\n"
        "for name in ('tensorflow_serving', 'matplotlib', 'nbclient', 'nbformat', 'ipykernel', 'pytest'):\n"
        "    sys.modules[name] = None  # import fails\n"
        "import draw_tf, draw_tf.cli, draw_tf.training, draw_tf.data, draw_tf.cluttered, draw_tf.visualize\n"
        "import draw_tf.export, draw_tf.export.serving_client, draw_tf.pretrained_models\n"
        "assert draw_tf.Draw is draw_tf.model.Draw\n"
        "print('ok')\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_the_tensorflow_range_script():
    path = os.path.join(REPO, ".ci", "test_tf_range")
    assert os.access(path, os.X_OK)
    subprocess.run(["bash", "-n", path], check=True)  # syntax only: it downloads TensorFlow
    with open(os.path.join(REPO, ".ci", "run")) as f:
        assert "test_tf_range" not in f.read()  # not part of the CI run
