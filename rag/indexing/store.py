"""The index on disk: builds made of segments, and atomic publication by switching a pointer.

Layout of the index folder::

    index/CURRENT          the name of the live build (replaced atomically)
    index/build-<id>/      one build:
        manifest.json        what the build depends on, its counts, its segments (each a build
                             folder, "." for this one, with the documents of it still live) and
                             the checksum of every file of the build's own segment
        documents.jsonl      the segment's documents' full text, one JSON object a line
        sentences.json       their citable sentences: [doc_id, start, end, section, role]
        chunks.json          their chunks, with the sentences each holds (ids within the segment)
        chunks.faiss         the chunk vectors
        sentences.npy        the sentence vectors
        bm25_chunks/, bm25_sentences/   BM25 terms: ids end to end, lengths, vocabulary

A full build is one segment, all its own. Adding, replacing or deleting a document writes a
build holding only the new document's segment (none for a delete) and a manifest that lists
the earlier builds' segments with the changed documents left out (tombstones): a change
writes and fsyncs about that document, not the corpus. Segments are never changed; a merge
(``rag.indexing.segments.merge_plan``) is one more build whose own segment replaces several.

Readers resolve CURRENT once and read that build and the builds it names, so a change
published beside them, or one killed half-way, never shows them a mixture or a broken
index. Garbage collection keeps the live build, the one it just replaced, and every build
either of them names.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from rag.indexing import lexical, vectors
from rag.ingest.chunks import Chunk
from rag.ingest.corpus import Document, Sentence
from rag.errors import IndexStoreError
from rag.indexing import segments
from rag.indexing.index import Index
from rag.indexing.segments import Segment

POINTER = "CURRENT"
MANIFEST = "manifest.json"


def write_build(index: Index, folder: Path) -> dict:
    """Write the build's own segment (if it has one not yet on disk) and its manifest into
    ``folder``; returns the manifest with each file's checksum."""
    layout = index.layout
    own = [seg for seg in layout.segments if seg.name is None]
    if len(own) > 1:
        raise IndexStoreError("a build can write one new segment only")
    if own:
        write_segment(own[0], folder)
    manifest = dict(index.manifest)
    manifest["segments"] = [{"build": seg.name or ".", "documents": list(live)}
                            for seg, live in zip(layout.segments, layout.live) if live]
    for entry in manifest["segments"]:
        # Another process (a `rag index` beside the server) may have collected a build this
        # one names: publishing would make a build that cannot load.
        if entry["build"] != "." and not (folder.parent / entry["build"] / MANIFEST).is_file():
            raise IndexStoreError(f"index segment {entry['build']} is gone (another process rebuilt the index): "
                                  "reload the index and try again")
    manifest["files"] = {
        p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()
    }
    _write_json(folder / MANIFEST, manifest)
    return manifest


def write_segment(seg: Segment, folder: Path) -> None:
    """Write one segment's files into ``folder``."""
    with (folder / "documents.jsonl").open("w", encoding="utf-8") as f:
        for d in seg.documents.values():
            f.write(json.dumps({"doc_id": d.doc_id, "sha256": d.sha256, "text": d.text}, ensure_ascii=False) + "\n")
    _write_json(folder / "sentences.json", [[s.doc_id, s.start, s.end, s.section, s.role] for s in seg.sentences])
    # vars(), not dataclasses.asdict: asdict deep-copies every field of every chunk.
    _write_json(folder / "chunks.json", [vars(c) for c in seg.chunks])
    vectors.save(seg.chunk_index, folder / "chunks.faiss")
    np.save(folder / "sentences.npy", seg.sentence_vectors)
    lexical.save_terms(seg.chunk_terms, folder / "bm25_chunks")
    lexical.save_terms(seg.sentence_terms, folder / "bm25_sentences")


def read_build(build_dir: Path, verify: bool = True) -> Index:
    """Read one build and the segments it names; with ``verify``, every file must match its
    checksum in the manifest of the build that wrote it."""
    manifest = read_manifest(build_dir)
    entries = manifest.get("segments")
    if not isinstance(entries, list) or not entries:
        raise IndexStoreError(f"index in {build_dir} has no segments (an older format): run `rag index`")
    segs, live = [], []
    for entry in entries:
        name = entry.get("build", ".")
        folder = build_dir if name == "." else build_dir.parent / name
        if not (folder / MANIFEST).is_file():
            raise IndexStoreError(f"index segment {name} is missing for {build_dir}: run `rag index`")
        if verify:
            _verify_files(folder, manifest if folder == build_dir else read_manifest(folder))
        segs.append(read_segment(folder))
        live.append(tuple(entry["documents"]))
    try:
        return Index.of_view(manifest, segments.assemble(segs, live), path=build_dir)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise IndexStoreError(f"index in {build_dir} is damaged ({exc}): run `rag index`") from None


def read_segment(folder: Path) -> Segment:
    """One segment's files, as ``write_segment`` wrote them."""
    try:
        documents = {}
        with (folder / "documents.jsonl").open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                documents[row["doc_id"]] = Document(row["doc_id"], row["text"], row["sha256"])
        sentences = [Sentence(d, s, e, sec, True, role) for d, s, e, sec, role in _read_json(folder / "sentences.json")]
        chunks = [Chunk(**{**c, "sentence_ids": tuple(c["sentence_ids"])}) for c in _read_json(folder / "chunks.json")]
        return Segment(documents, sentences, chunks, vectors.load(folder / "chunks.faiss"),
                       np.load(folder / "sentences.npy"), lexical.load_terms(folder / "bm25_chunks"),
                       lexical.load_terms(folder / "bm25_sentences"), name=folder.name)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, IndexError) as exc:
        raise IndexStoreError(f"index in {folder} is damaged ({exc}): run `rag index`") from None


def referenced_builds(root: Path, build_dir: Path | None) -> set[Path]:
    """The build folders whose segments ``build_dir`` reads (itself included)."""
    if build_dir is None:
        return set()
    try:
        entries = read_manifest(build_dir).get("segments") or []
    except IndexStoreError:
        return {build_dir}
    return {build_dir} | {root / e["build"] for e in entries if isinstance(e, dict) and e.get("build", ".") != "."}


def read_manifest(build_dir: Path) -> dict:
    """The manifest of one build folder."""
    try:
        return json.loads((build_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexStoreError(f"index manifest unreadable in {build_dir}: {exc}") from None


def live_manifest(root: Path) -> dict | None:
    """The live build's manifest, or None when there is no build."""
    build_dir = current_build(root)
    return None if build_dir is None else read_manifest(build_dir)


def _verify_files(build_dir: Path, manifest: dict) -> None:
    """Raise when a file is missing or its bytes differ from the manifest's checksum."""
    for name, digest in manifest.get("files", {}).items():
        path = build_dir / name
        if not path.is_file() or sha256_file(path) != digest:
            raise IndexStoreError(f"index file {name} is missing or corrupted in {build_dir}: run `rag index`")


def current_build(root: Path) -> Path | None:
    """The live build folder, or None when nothing was published."""
    try:
        name = (root / POINTER).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    path = root / name
    return path if name and path.is_dir() else None


def new_build_dir(root: Path) -> Path:
    """A fresh, empty temporary folder inside ``root`` to build into."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".tmp-build-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    path.mkdir()
    return path


def make_live(root: Path, tmp: Path) -> Path:
    """Make the finished build in ``tmp`` the live one; returns its final folder."""
    final = root / tmp.name.replace(".tmp-build-", "build-", 1)
    replaced = current_build(root)
    _fsync_tree(tmp)
    os.replace(tmp, final)
    pointer_tmp = root / f".{POINTER}.{os.getpid()}"
    pointer_tmp.write_text(final.name + "\n", encoding="utf-8")
    _fsync_file(pointer_tmp)
    os.replace(pointer_tmp, root / POINTER)
    _fsync_dir(root)
    # The build just replaced stays, for readers that resolved CURRENT before the switch.
    collect_garbage(root, keep=replaced)
    return final
def remove_dead_temporaries(root: Path) -> None:
    """Remove half-written builds and pointer files of processes that died (``kill -9`` during a build)."""
    for path in root.glob(".tmp-build-*"):
        if not _owned_by_live_process(path):
            shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f".{POINTER}.*"):
        if not _pid_alive(path.name.rsplit(".", 1)[-1]):
            path.unlink(missing_ok=True)


def collect_garbage(root: Path, keep: Path | None = None) -> None:
    """Remove leftovers of killed builds and every build but the live one, ``keep`` and the
    builds whose segments either of them reads."""
    live = current_build(root)
    remove_dead_temporaries(root)
    wanted = referenced_builds(root, live) | referenced_builds(root, keep)
    for path in root.glob("build-*"):
        if path not in wanted:
            shutil.rmtree(path, ignore_errors=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _owned_by_live_process(path: Path) -> bool:
    """Whether the temporary build's process (its pid is in the name) is still running."""
    parts = path.name.split("-")
    return len(parts) >= 2 and _pid_alive(parts[-2])


def _pid_alive(text: str) -> bool:
    """Whether the process whose pid is ``text`` is running (False for anything not a pid)."""
    try:
        pid = int(text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(folder: Path) -> None:
    """Flush every file of a finished build to disk before it becomes visible."""
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    _fsync_dir(folder)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))
