"""Connecting to the Postgres store (psycopg 3, pgvector's adapter); the only module that knows
the driver's exceptions, which it turns into ``StoreUnavailable`` or ``ConfigError``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
from pgvector.psycopg import register_vector

from rag.errors import ConfigError, IndexStoreError, StoreUnavailable
from rag.indexing.pg.schema import MIGRATE_LOCK

# Seconds to wait for the database before calling it unreachable: a request should fail fast.
CONNECT_TIMEOUT_S = 3


def is_postgres(url: str | None) -> bool:
    """Whether a store setting names a Postgres database ("postgresql://…" or "postgres://…")."""
    try:
        return bool(url) and urlsplit(url).scheme in ("postgresql", "postgres")
    except ValueError:  # "postgresql://[bad": not a URL at all
        return False


def check_url(url: str) -> str:
    """The connection string if it parses, else a ConfigError naming what is wrong (no password echoed).

    ``"postgresql://u@/db?host=/tmp"`` -> itself; ``"postgresql://[bad"`` -> ConfigError.
    """
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"RAG_STORE is not a valid Postgres connection string: {_first_line(exc)}") from None
    return url


def open_connection(url: str) -> psycopg.Connection:
    """An autocommit connection (transactions are explicit: ``with conn.transaction()``) with
    pgvector's types registered; the caller closes it. Unreachable: StoreUnavailable."""
    try:
        conn = psycopg.connect(check_url(url), connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot reach the Postgres store: {_first_line(exc)}") from None
    try:
        with translated():
            _register(conn)
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def connect(url: str) -> Iterator[psycopg.Connection]:
    """``open_connection`` for one block, closed after it; driver errors inside are translated."""
    conn = open_connection(url)
    try:
        with translated():
            yield conn
    finally:
        conn.close()


def _register(conn: psycopg.Connection) -> None:
    """Register the vector type (the extension must exist first, so create it when missing)."""
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:  # "vector type not found": a fresh database
        with conn.transaction():  # two processes creating it at once would collide (a unique violation)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Driver errors raised inside become the library's: a lost or refused connection is
    StoreUnavailable (HTTP 503), anything else an IndexStoreError with the server's message."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"the Postgres store is unreachable: {_first_line(exc)}") from None
    except psycopg.Error as exc:
        raise IndexStoreError(f"the Postgres store refused: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
