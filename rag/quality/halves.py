"""Fixed halves of an evaluation set: what is fitted is fitted on one, and reported on the other too."""

from __future__ import annotations

import hashlib

FIT, HELD = "fit", "held"


def half_of(key: str) -> str:
    """``"fit"`` or ``"held"``, by the first byte of the key's SHA-256: the same on every machine and run."""
    return FIT if hashlib.sha256(key.encode("utf-8")).digest()[0] % 2 == 0 else HELD
