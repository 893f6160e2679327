"""Fewer memory arenas for a threaded server.

glibc gives each thread that allocates at the same time as another an arena of its own, up to
eight per core, and an arena keeps what was freed in it. A server answering 32 clients from a
pool of threads grew by a quarter of its loaded size under load (one server at 97k chunks under 32
clients, `bench.pg_two_servers --servers 1 --copies 20`: +483 MB by default, +341 MB with two
arenas, throughput no lower: 7.7 against 6.8 requests/s on a busy machine); at 1M chunks that
growth decides whether two servers fit on one machine.
"""

from __future__ import annotations

import ctypes
import os

_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def limit_arenas(count: int = 2) -> bool:
    """Ask glibc for at most ``count`` arenas; False where that is not glibc or the user set
    ``MALLOC_ARENA_MAX`` themselves (theirs stands)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    return bool(mallopt is not None and mallopt(_M_ARENA_MAX, count) == 1)
