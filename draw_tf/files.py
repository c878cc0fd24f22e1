"""Files written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def readable_by_all(path):
    """Gives a file from mkstemp (mode 0600) the mode a normal open() would: 0666 less the umask."""
    os.chmod(path, 0o666 & ~current_umask())


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`, renamed onto `path` only when the block succeeds.

    A crash or an exception leaves the previous file (if any) untouched and no temporary behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        readable_by_all(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
