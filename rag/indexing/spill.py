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


def file_backing(array: np.ndarray) -> np.memmap | None:
    """The file-backed array ``array`` is (a view of), or None for an array in memory."""
    base = array
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    return base


def settle(array: np.ndarray, start: int = 0, stop: int | None = None) -> None:
    """Once rows ``start:stop`` of a file-backed array are written: write them out and let go of
    their pages, so that only the rows later read come back into this process's memory (no-op for
    an in-memory array). Only that range is touched: settling batch by batch costs no more than once."""
    base = file_backing(array)
    raw = getattr(base, "_mmap", None)
    if raw is None:
        return
    row_bytes = base.strides[0] if base.ndim else base.itemsize
    stop = len(base) if stop is None else stop
    # Whole pages around the rows (a page shared with unwritten rows is written out as it stands
    # and read back from the file when touched again: a shared file mapping loses nothing).
    first = (start * row_bytes) // mmap.PAGESIZE * mmap.PAGESIZE
    last = min(len(raw), stop * row_bytes)
    if last <= first:
        return
    raw.flush(first, last - first)
    if hasattr(raw, "madvise"):
        raw.madvise(mmap.MADV_DONTNEED, first, last - first)


def stacked(blocks: list[np.ndarray], dtype, folder: Path | None, batch_rows: int = 65536) -> np.ndarray:
    """``np.vstack(blocks).astype(dtype)``, file-backed in ``folder`` when large (``empty``), written
    and settled a batch of rows at a time so the copy never holds the whole array in memory."""
    width = blocks[0].shape[1] if blocks else 0
    out = empty((sum(len(b) for b in blocks), width), dtype, folder)
    at = settled = 0
    for block in blocks:
        out[at:at + len(block)] = block
        at += len(block)
        if at - settled >= batch_rows:
            settle(out, settled, at)
            settled = at
    settle(out, settled, at)
    return out
