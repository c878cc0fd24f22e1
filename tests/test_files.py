"""Files are written whole or not at all: a failing write keeps the previous file and leaves no temporary."""

import os
import stat

import pytest

from draw_tf.files import atomic_path
from draw_tf.images import save_grid


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(path), suffix=".json") as tmp:
            with open(tmp, "w") as f:
                f.write("half of the new")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_successful_write_replaces_with_normal_permissions(tmp_path):
    path = tmp_path / "grid.png"
    save_grid(str(path), [[[[0.0]] * 4] * 4] * 3)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["grid.png"]
