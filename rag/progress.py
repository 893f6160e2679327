"""Progress of long index work: a bar with rate and time left on a terminal, and a plain log
line every few seconds where there is none (CI logs, a service's journal, a pipe).

Whether or not anything is printed, the work running now is also kept on a thread-safe board
(``current()``), so a server can report how far its index build is over HTTP.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger("rag.progress")
T = TypeVar("T")

# Fewer items than this finish before a bar is worth drawing.
MIN_ITEMS = 64
# Without a terminal: at most one line per this many seconds, and one at the end.
LOG_EVERY_S = 10.0
# Work of one item is over before anyone could look, and a question's own embedding is one
# batch: putting those on the board would only cost every question a lock.
BOARD_MIN_ITEMS = 2


@dataclass(frozen=True)
class Snapshot:
    """How far one piece of work is: ``total``, rate and time left are None when not known."""

    stage: str
    done: int
    total: int | None
    rate_per_s: float | None
    eta_s: float | None
    started_at: float  # seconds since the epoch

    @property
    def percent(self) -> int | None:
        """Whole percent done, when the total is known."""
        return None if not self.total else min(100, self.done * 100 // self.total)

    def describe(self) -> str:
        """One line for people: ``"37% (BM25 terms of chunks: 370/1000, about 4 s left)"``, or the stage alone."""
        if self.percent is None:
            return self.stage
        left = f", about {self.eta_s:.0f} s left" if self.eta_s is not None else ""
        return f"{self.percent}% ({self.stage}: {self.done}/{self.total}{left})"


@dataclass
class _Task:
    stage: str
    total: int | None
    started: float  # monotonic, for the rate
    started_at: float  # wall clock, for people
    done: int = 0

    def snapshot(self, now: float) -> Snapshot:
        elapsed = now - self.started
        rate = self.done / elapsed if self.done and elapsed > 0 else None
        eta = (self.total - self.done) / rate if rate and self.total else None
        return Snapshot(self.stage, self.done, self.total, rate, eta, self.started_at)


class Board:
    """The work running now, newest last; written by the workers, read by anyone (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[int, _Task] = {}
        self._ids = itertools.count()

    def start(self, stage: str, total: int | None) -> int:
        """Put a piece of work on the board; returns its ticket."""
        with self._lock:
            ticket = next(self._ids)
            self._tasks[ticket] = _Task(stage, total, time.monotonic(), time.time())
            return ticket

    def advance(self, ticket: int, done: int) -> None:
        """Record how many items of the work are done."""
        with self._lock:
            task = self._tasks.get(ticket)
            if task is not None:
                task.done = done

    def finish(self, ticket: int) -> None:
        """Take the work off the board."""
        with self._lock:
            self._tasks.pop(ticket, None)

    def current(self) -> Snapshot | None:
        """The newest work still running (the innermost step of a build), or None when idle."""
        with self._lock:
            if not self._tasks:
                return None
            return self._tasks[max(self._tasks)].snapshot(time.monotonic())


BOARD = Board()


def current() -> Snapshot | None:
    """The long work running in this process now, or None."""
    return BOARD.current()


@contextmanager
def stage(what: str) -> Iterator[None]:
    """Name a step without a count (``"loading the embedding model"``) for as long as it runs."""
    ticket = BOARD.start(what, None)
    try:
        yield
    finally:
        BOARD.finish(ticket)


def tracked(items: Iterable[T], total: int, what: str, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while showing how far through ``total`` they are: ``"splitting documents"``.

    ``enabled`` turns the printed progress on or off; the board is kept either way.
    """
    if total < BOARD_MIN_ITEMS:
        yield from _shown(items, total, what, enabled)
        return
    ticket = BOARD.start(what, total)
    try:
        for done, item in enumerate(_shown(items, total, what, enabled), start=1):
            yield item
            BOARD.advance(ticket, done)  # the caller asked for the next item: this one is done
    finally:
        BOARD.finish(ticket)


def _shown(items: Iterable[T], total: int, what: str, enabled: bool) -> Iterator[T]:
    """``items`` with a bar on a terminal, log lines elsewhere, or as they are."""
    if not enabled or total < MIN_ITEMS:
        return iter(items)
    if sys.stderr.isatty():
        from tqdm import tqdm

        return iter(tqdm(items, total=total, desc=what, unit=""))
    return _logged(items, total, what)


def _logged(items: Iterable[T], total: int, what: str) -> Iterator[T]:
    """``items``, logging count, rate and time left at most every ``LOG_EVERY_S`` and at the end."""
    start = last = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= LOG_EVERY_S or done == total:
            rate = done / max(now - start, 1e-9)
            log.info("%s: %d/%d (%.1f/s, about %.0f s left)", what, done, total, rate, (total - done) / rate)
            last = now
