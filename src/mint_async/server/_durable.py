"""Private, crash-safe file primitives for the data directory.

Everything the server writes is private to the user running it: directories
``0o700``, files ``0o600``. The modes are set explicitly (``fchmod``/``chmod``
after creating), so they hold whatever the umask is; files are created with
those modes from the start, so there is no moment at which they are readable
by others.

Crash safety comes from one rule: a change becomes visible through a single
``os.replace`` or ``os.rename`` of something already complete and fsynced,
and the parent directory is fsynced afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import uuid
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Final

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "append_private",
    "check_root",
    "fsync_path",
    "is_temp",
    "make_private",
    "mkdir_private",
    "remove_path",
    "seal_tree",
    "write_private",
]

logger = logging.getLogger("mint_async.server")

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def fsync_path(path: Path) -> None:
    """Make a file's contents, or a directory's entries (creations, renames), durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mkdir_private(path: Path, *, root: Path) -> None:
    """Create ``path`` and its missing ancestors below ``root`` as ``0o700`` directories.

    Each new directory's parent is fsynced, so a later rename into it survives a crash.
    """
    if path.is_dir():
        return
    if path != root:
        mkdir_private(path.parent, root=root)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return  # another thread made it
    os.chmod(path, DIR_MODE)
    fsync_path(path.parent)


def _create(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)  # umask-independent, and tightens an older, looser file
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, ``os.replace``, fsync dir)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with os.fdopen(_create(tmp, os.O_WRONLY | os.O_EXCL), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


@contextmanager
def append_private(path: Path) -> Generator[IO[str]]:
    """``path`` opened for appending text, created ``0o600`` if missing."""
    with os.fdopen(_create(path, os.O_WRONLY | os.O_APPEND), "a") as f:
        yield f


def seal_tree(directory: Path) -> int:
    """Fsync and make private everything under ``directory``; the total size of its files."""
    size = 0
    for dirpath, dirnames, filenames in os.walk(directory):
        os.chmod(dirpath, DIR_MODE)
        for name in filenames:
            path = Path(dirpath, name)
            size += path.stat().st_size
            os.chmod(path, FILE_MODE)
            fsync_path(path)
        for name in dirnames:
            fsync_path(Path(dirpath, name))
    return size


def remove_path(path: Path) -> None:
    """Remove a file or a directory tree (symlinks not followed); nothing if it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def is_temp(name: str) -> bool:
    """Whether ``name`` is a :func:`write_private` temp file (left behind by a crash)."""
    return name.startswith(".") and name.endswith(".tmp")


def make_private(path: Path) -> None:
    """Tighten ``path`` (recursively, symlinks not followed) to ``0o700``/``0o600`` modes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    want = DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
    if stat.S_IMODE(st.st_mode) != want:
        os.chmod(path, want)
    if stat.S_ISDIR(st.st_mode):
        for child in path.iterdir():
            make_private(child)


def check_root(root: Path) -> None:
    """Create the data directory ``0o700``; warn (not change) if an existing one is looser.

    The data directory may be one the user chose and shares on purpose, so its
    own mode is theirs; what the server keeps inside it is made private anyway.
    """
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        mkdir_private(root, root=root)
        return
    mode = stat.S_IMODE(root.stat().st_mode)
    if mode & 0o077:
        logger.warning(
            "data directory %s has mode %o: other users can list it (its contents are"
            " private regardless); chmod 700 it to hide it entirely",
            root,
            mode,
        )
