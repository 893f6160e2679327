"""The index's life: whether the live build is fresh, rebuilding and publishing it, loading it.

``rag.indexing.index`` builds in memory and ``rag.indexing.store`` owns the files; this module decides when to
build and makes a build live. The CLI, the evaluation suites and the service all go through it:
``rebuild`` for a whole corpus (reusing what it can of the live build), ``update`` for a few
documents added, replaced or deleted (a new segment and a small manifest, published by the
same atomic switch of CURRENT). With ``RAG_STORE`` set, each of these hands over to the
Postgres store (``rag.indexing.pg.store``) instead of the files.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from rag.indexing import store
from rag.config import Settings
from rag.progress import stage
from rag.ingest.corpus import corpus_hashes
from rag.indexing.embedder import Embedder, load_embedder
from rag.errors import IndexStoreError, RagError
from rag.indexing.index import Index, build, change, fingerprint, stale_reasons, structure_rules
from rag.ingest.corpus import Document, load_document, read_text

log = logging.getLogger(__name__)


def rebuild_reasons(settings: Settings) -> list[str]:
    """Why the index must be (re)built: missing, damaged manifest, or stale; empty when fresh.

    The corpus is read first, so a missing or unreadable corpus fails before anything else.
    """
    if settings.store:
        return _pg().rebuild_reasons(settings)
    expected = fingerprint(settings, corpus_hashes(settings.corpus_dir))
    try:
        manifest = store.live_manifest(settings.index_dir)
    except RagError as exc:
        return [str(exc)]
    return ["no index yet"] if manifest is None else stale_reasons(manifest, expected)


def rebuild(settings: Settings, embedder: Embedder, progress: bool = True, reuse: Index | None = None,
            force: bool = False) -> Index:
    """Build and publish the index; passages unchanged since ``reuse`` (by default the live
    build on disk) keep their vectors, so only new text is embedded. (``force`` matters on the
    Postgres store only, which otherwise writes just the corpus folder's changed documents.)"""
    if settings.store:
        return _pg().rebuild(settings, embedder, progress, force)
    with stage("building the index"):
        built = build(settings, embedder, progress=progress, reuse=reuse or _live_or_none(settings.index_dir))
        publish(built, settings.index_dir)
    return built


def update(settings: Settings, embedder: Embedder, index: Index, doc_ids: list[str]) -> Index:
    """Index the corpus files ``doc_ids`` as they are now (added, replaced, or deleted when
    the file is gone) on top of ``index`` and publish the result; ``index`` is left as it was.

    Only these documents are read, split, embedded and written (``rag.indexing.index.change``):
    the new build names the live build's segments instead of copying them.
    """
    if settings.store:
        return _pg().update(settings, embedder, index, doc_ids)
    t = time.perf_counter()
    rules = structure_rules(settings)
    docs: dict[str, Document | None] = {}
    for doc_id in doc_ids:
        path = settings.corpus_dir / doc_id
        docs[doc_id] = load_document(doc_id, read_text(path), rules) if path.is_file() else None
    read_s = time.perf_counter() - t
    changed = change(settings, embedder, index, docs)
    # Reading and splitting the changed files is part of the change the manifest records.
    changed.manifest["build_timings_s"] = {"read_split_s": round(read_s, 3), **changed.manifest["build_timings_s"]}
    publish(changed, settings.index_dir)
    return changed


def ensure_index(settings: Settings, embedder: Embedder | None = None, progress: bool = True) -> Index:
    """Load the index, building it first when it is missing, stale or damaged (the reasons are logged)."""
    if settings.store:
        return _pg().ensure_index(settings, embedder, progress)
    clean_start(settings.index_dir)
    reasons = rebuild_reasons(settings)
    if not reasons:
        try:
            with stage("loading the index"):
                return load(settings.index_dir)
        except RagError as exc:  # a damaged build is rebuilt, never served
            reasons = [str(exc)]
    log.warning("building the index: %s", "; ".join(reasons))
    return rebuild(settings, embedder or load_embedder(settings), progress)


def clean_start(root: Path) -> None:
    """Remove builds a killed process left (half-written, or published and then superseded);
    the live build and any a running process is writing stay."""
    if root.is_dir():
        store.collect_garbage(root)


def publish(index: Index, root: Path) -> Path:
    """Write the build into a temporary folder under ``root`` and make it live atomically.

    A failed write (full or read-only disk) removes the partial build, leaves the live
    build untouched and raises IndexStoreError with the system's reason.
    """
    try:
        tmp = store.new_build_dir(root)
    except OSError as exc:
        raise IndexStoreError(f"cannot write the index in {root}: {exc.strerror or exc}") from None
    try:
        manifest = store.write_build(index, tmp)
        final = store.make_live(root, tmp)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise IndexStoreError(f"cannot write the index in {root}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for seg in index.layout.segments:
        if seg.name is None:
            seg.name = final.name  # later builds name this one for the segment
    index.manifest, index.path = manifest, final
    return final


def load(root: Path, verify: bool = True) -> Index:
    """Load the live build; with ``verify``, every file must match its checksum."""
    build_dir = store.current_build(root)  # resolved once: a publish meanwhile cannot mix two builds
    if build_dir is None:
        raise IndexStoreError(f"no index in {root}: run `rag index`")
    return store.read_build(build_dir, verify)


def _live_or_none(root: Path) -> Index | None:
    """The live build if it loads cleanly (to reuse its vectors in a rebuild), else None."""
    try:
        return load(root) if store.current_build(root) else None
    except Exception:  # a damaged build is simply not reused
        return None


def _pg():
    """The Postgres store's lifecycle, imported only when ``RAG_STORE`` is set (psycopg stays optional)."""
    from rag.indexing.pg import store

    return store
