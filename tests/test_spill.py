"""Large arrays in an unnamed file (rag.indexing.spill): the file holds what was written, leaves
nothing behind, and a folder that cannot take it means memory, never a crash. No model, no database."""

from __future__ import annotations

import errno
import os

import numpy as np

from rag.indexing import spill


def test_large_array_lives_in_a_file_that_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "MIN_BYTES", 0)
    array = spill.empty((1000, 8), np.float16, tmp_path / "views")
    assert isinstance(array, np.memmap) and list((tmp_path / "views").iterdir()) == []
    array[:] = np.arange(8000, dtype=np.float16).reshape(1000, 8)
    spill.settle(array)  # pages given back: reading brings the written values back from the file
    assert np.array_equal(array[[0, 999]], np.arange(8000, dtype=np.float16).reshape(1000, 8)[[0, 999]])


def test_small_array_or_no_folder_stays_in_memory(tmp_path):
    assert not isinstance(spill.empty((10, 8), np.float16, tmp_path), np.memmap)
    assert not isinstance(spill.empty((10**6, 64), np.float16, None), np.memmap)
    spill.settle(np.zeros(3))  # a no-op for memory


def test_a_full_disk_means_memory_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "MIN_BYTES", 0)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(spill.os, "posix_fallocate", full)
    array = spill.empty((100, 8), np.float16, tmp_path)
    assert not isinstance(array, np.memmap) and array.shape == (100, 8)
    file_in_place = tmp_path / "not-a-folder"
    file_in_place.write_text("x")
    assert not isinstance(spill.empty((100, 8), np.float16, file_in_place), np.memmap)


def _file_backed(array: np.ndarray) -> bool:
    return spill.file_backing(array) is not None


def test_settling_a_range_keeps_every_row_and_odd_ranges_are_harmless(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "MIN_BYTES", 0)
    expected = np.arange(3000 * 6, dtype=np.float32).reshape(3000, 6)
    array = spill.empty(expected.shape, np.float32, tmp_path)
    for start in range(0, 3000, 700):  # batches whose edges fall inside pages
        array[start:start + 700] = expected[start:start + 700]
        spill.settle(array, start, min(3000, start + 700))
    for start, stop in ((0, 0), (2999, 3000), (2990, 5000), (5000, 6000)):
        spill.settle(array, start, stop)
    assert np.array_equal(array, expected)


def test_stacked_is_vstack_into_a_file_when_large(tmp_path, monkeypatch):
    blocks = [np.full((n, 4), n, dtype=np.float32) for n in (3, 0, 70, 5)]
    in_memory = spill.stacked(blocks, np.float16, None, batch_rows=8)
    assert not _file_backed(in_memory) and np.array_equal(in_memory, np.vstack(blocks).astype(np.float16))
    monkeypatch.setattr(spill, "MIN_BYTES", 0)
    in_file = spill.stacked(blocks, np.float16, tmp_path, batch_rows=8)
    assert _file_backed(in_file) and in_file.dtype == np.float16
    assert np.array_equal(in_file, np.vstack(blocks).astype(np.float16))
