"""Large read-mostly arrays kept in an unnamed file on local disk, mapped into memory.

A server's view of a large Postgres store holds every sentence's vector (2.9 GB at 1M chunks),
yet a question reads only its ~50 candidate sentences' rows. Kept in a file the operating system
pages in what is read and keeps the rest on disk, so two servers' views fit on one machine where
two in-memory copies did not (docs/benchmarks.md, PG-SCALE). The file has no name (it is gone
when the process ends, however it ends), and lives in a folder on disk, not in /tmp, which is often
memory itself.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import numpy as np

# Smaller arrays stay in memory: a file per small change would add up to many open files.
MIN_BYTES = 64 << 20


def empty(shape: tuple[int, int], dtype, folder: Path | None) -> np.ndarray:
    """An uninitialised array of ``shape``, file-backed in ``folder`` when it is that large."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if folder is None or size < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:  # the mapping keeps the file while it lives
            # The disk space is taken now: a sparse file's writes through a mapping that find the
            # disk full kill the process (SIGBUS), where this raises.
            os.posix_fallocate(f.fileno(), 0, size)
            return np.memmap(f, dtype=dtype, mode="w+", shape=shape)
    except OSError:  # a folder that cannot take it (read-only, full): memory, as without one
        return np.empty(shape, dtype=dtype)


def settle(array: np.ndarray) -> None:
    """Once a file-backed array is written: write it out and let go of its pages, so that only
    the rows later read come back into this process's memory (no-op for an in-memory array)."""
    base = array
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    if base is None:
        return
    base.flush()
    raw = getattr(base, "_mmap", None)
    if raw is not None and hasattr(raw, "madvise"):
        raw.madvise(mmap.MADV_DONTNEED)
