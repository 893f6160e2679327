"""The server's arena limit (rag.malloc): applied on glibc, and a user's own MALLOC_ARENA_MAX stands."""

from __future__ import annotations

import platform

import pytest

from rag.malloc import limit_arenas


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_arena_limit_is_applied_on_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas() is True


def test_a_users_own_setting_stands(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False
