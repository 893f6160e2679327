"""Atomic publication of built artifacts: build in a temporary folder, then switch a pointer.

Layout of the index folder::

    index/CURRENT          the name of the live build (replaced atomically)
    index/build-<id>/      one complete build: manifest.json and its files

Readers resolve CURRENT once and read that build, so a rebuild running beside them,
or one killed half-way, never shows them a mixture or a broken index.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

POINTER = "CURRENT"


def current_build(root: Path) -> Path | None:
    """The live build folder, or None when nothing was published."""
    try:
        name = (root / POINTER).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    path = root / name
    return path if name and path.is_dir() else None


def new_build_dir(root: Path) -> Path:
    """A fresh, empty temporary folder inside ``root`` to build into."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".tmp-build-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    path.mkdir()
    return path


def publish(root: Path, tmp: Path) -> Path:
    """Make the build in ``tmp`` the live one; returns its final folder."""
    final = root / tmp.name.replace(".tmp-build-", "build-", 1)
    replaced = current_build(root)
    _fsync_tree(tmp)
    os.replace(tmp, final)
    pointer_tmp = root / f".{POINTER}.{os.getpid()}"
    pointer_tmp.write_text(final.name + "\n", encoding="utf-8")
    _fsync_file(pointer_tmp)
    os.replace(pointer_tmp, root / POINTER)
    _fsync_dir(root)
    # The build just replaced stays, for readers that resolved CURRENT before the switch.
    collect_garbage(root, keep=replaced)
    return final


def remove_dead_temporaries(root: Path) -> None:
    """Remove half-written builds and pointer files of processes that died (``kill -9`` during a build)."""
    for path in root.glob(".tmp-build-*"):
        if not _owned_by_live_process(path):
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f".{POINTER}.*"):
        if not _pid_alive(path.name.rsplit(".", 1)[-1]):
            path.unlink(missing_ok=True)


def collect_garbage(root: Path, keep: Path | None = None) -> None:
    """Remove leftovers of killed builds and every build but the live one and ``keep``."""
    live = current_build(root)
    remove_dead_temporaries(root)
    for path in root.glob("build-*"):
        if path not in (live, keep):
            shutil.rmtree(path, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _owned_by_live_process(path: Path) -> bool:
    """Whether the temporary build's process (its pid is in the name) is still running."""
    parts = path.name.split("-")
    return len(parts) >= 2 and _pid_alive(parts[-2])


def _pid_alive(text: str) -> bool:
    """Whether the process whose pid is ``text`` is running (False for anything not a pid)."""
    try:
        pid = int(text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(folder: Path) -> None:
    """Flush every file of a finished build to disk before it becomes visible."""
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    _fsync_dir(folder)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
