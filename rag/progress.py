"""Progress of long index work: a bar with rate and time left on a terminal, and a plain log
line every few seconds where there is none (CI logs, a service's journal, a pipe)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("rag.progress")
T = TypeVar("T")

# Fewer items than this finish before a bar is worth drawing.
MIN_ITEMS = 64
# Without a terminal: at most one line per this many seconds, and one at the end.
LOG_EVERY_S = 10.0


def tracked(items: Iterable[T], total: int, what: str, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while showing how far through ``total`` they are: ``"splitting documents"``."""
    if not enabled or total < MIN_ITEMS:
        yield from items
        return
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=what, unit="")
        return
    start = last = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= LOG_EVERY_S or done == total:
            rate = done / max(now - start, 1e-9)
            log.info("%s: %d/%d (%.1f/s, about %.0f s left)", what, done, total, rate, (total - done) / rate)
            last = now
