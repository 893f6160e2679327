"""Per-document updates (rag.indexing.index.change, rag.indexing.lifecycle.update): an index changed
one document at a time, in memory and read back from disk, is the index a build from scratch of
the same corpus gives (same passages in the same order, same vectors, BM25 scores to 1e-6,
document frequencies, same answers); a change killed before its pointer switch leaves the
previous build live and whole; garbage collection never removes a segment a live build reads.
Hash embedder, no model load."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rag.indexing import index as index_mod
from rag.indexing import lifecycle, segments, store, vectors
from rag.indexing.embedder import HashEmbedder
from rag.errors import IndexStoreError
from rag.config import Settings
from rag.studies.catalogue import documents_of
from tests.test_incremental_build import DOCS, NEW, QUESTIONS, _same_index
from tests.test_spill import _file_backed

MORE = {
    "e.txt": "帕金森病\n一项开放标签研究纳入了12例帕金森病患者,术后随访两年,运动评分平均改善了30%。\n",
    "f/g.txt": "肌萎缩侧索硬化\n研究者对26例患者进行了鞘内注射,未观察到严重不良事件。\n",
    "0.txt": "前言\n本文综述了间充质干细胞在神经系统疾病中的临床研究进展。\n",
}


def _settings(root: Path, files: dict[str, str]) -> Settings:
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    _write_files(corpus, files)
    return Settings(corpus_dir=corpus, index_dir=root / "index", cache_dir=root / "cache", embedding_model="hash-test")


def _write_files(corpus: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text, encoding="utf-8")


def _fresh(tmp_path: Path, files: dict[str, str]) -> index_mod.Index:
    return index_mod.build(_settings(tmp_path / "fresh", files), HashEmbedder(), progress=False)


def _write(settings, files: dict[str, str]) -> None:
    _write_files(settings.corpus_dir, files)


def _live(tmp_path: Path) -> tuple:
    settings = _settings(tmp_path / "live", DOCS)
    built = index_mod.build(settings, HashEmbedder(), progress=False)
    lifecycle.publish(built, settings.index_dir)
    return settings, built


def _same_everywhere(tmp_path, settings, changed, files) -> None:
    """In memory, read back from disk, and a fresh build: one index."""
    import shutil
    shutil.rmtree(tmp_path / "fresh", ignore_errors=True)
    fresh = _fresh(tmp_path, files)
    _same_index(changed, fresh)
    loaded = lifecycle.load(settings.index_dir)
    _same_index(loaded, fresh)
    for question in QUESTIONS:  # the dense search over segments, tombstones left out, is the fresh one's
        for idx in (changed, loaded):
            got, want = (vectors.search(x.chunk_vectors, HashEmbedder().encode([question], True)[0], 50)
                         for x in (idx, fresh))
            np.testing.assert_array_equal(got[1], want[1])
            np.testing.assert_allclose(got[0], want[0], atol=1e-6)
    assert loaded.manifest == changed.manifest
    for idx in (changed, loaded):  # each document's sentences, as the study records read them
        by_doc: dict[str, list] = {}
        for sentence in idx.sentences:
            by_doc.setdefault(sentence.doc_id, []).append(sentence)
        with_sentences = documents_of(idx)
        assert set(with_sentences) == set(idx.documents)
        for doc_id in idx.documents:
            assert list(with_sentences[doc_id].sentences) == (list(idx.documents[doc_id].sentences) or by_doc.get(doc_id, []))
    assert index_mod.stale_reasons(changed.manifest, index_mod.fingerprint(settings, {
        k: d.sha256 for k, d in fresh.documents.items()})) == []


@pytest.mark.parametrize("change", ["add", "replace", "delete", "add-first", "add-nested"])
def test_one_change_equals_a_fresh_build(tmp_path, change):
    settings, live = _live(tmp_path)
    files = dict(DOCS)
    if change == "add":
        files["d.txt"] = NEW
        _write(settings, {"d.txt": NEW})
        doc_id = "d.txt"
    elif change == "add-first":  # sorts before every document: every row moves
        files["0.txt"] = MORE["0.txt"]
        _write(settings, {"0.txt": MORE["0.txt"]})
        doc_id = "0.txt"
    elif change == "add-nested":
        files["f/g.txt"] = MORE["f/g.txt"]
        _write(settings, {"f/g.txt": MORE["f/g.txt"]})
        doc_id = "f/g.txt"
    elif change == "replace":
        files["b.txt"] = DOCS["b.txt"].replace("9例", "12例") + NEW
        _write(settings, {"b.txt": files["b.txt"]})
        doc_id = "b.txt"
    else:
        del files["a.txt"]
        (settings.corpus_dir / "a.txt").unlink()
        doc_id = "a.txt"
    before = (list(live.sentences), list(live.chunks), np.asarray(live.sentence_vectors).copy())
    changed = lifecycle.update(settings, HashEmbedder(), live, [doc_id])
    # The index changed from is left as it was: a reader holding it sees no half change.
    assert (live.sentences, live.chunks) == before[:2]
    np.testing.assert_array_equal(np.asarray(live.sentence_vectors), before[2])
    _same_everywhere(tmp_path, settings, changed, files)


def test_a_change_writes_only_the_changed_document(tmp_path):
    settings, live = _live(tmp_path)
    _write(settings, {"d.txt": NEW})
    changed = lifecycle.update(settings, HashEmbedder(), live, ["d.txt"])
    own = changed.path
    docs = [line for line in (own / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(docs) == 1 and '"d.txt"' in docs[0]
    assert [e["build"] for e in changed.manifest["segments"]] == [live.path.name, "."]
    (settings.corpus_dir / "d.txt").unlink()
    deleted = lifecycle.update(settings, HashEmbedder(), changed, ["d.txt"])
    assert sorted(p.name for p in deleted.path.iterdir()) == ["manifest.json"]  # a delete writes a manifest only
    assert deleted.manifest["segments"] == [{"build": live.path.name, "documents": sorted(DOCS)}]


def test_many_changes_with_merges_equal_a_fresh_build(tmp_path, monkeypatch):
    monkeypatch.setattr(segments, "MAX_SEGMENTS", 2)
    settings, index = _live(tmp_path)
    files = dict(DOCS)
    steps = [("d.txt", NEW), ("e.txt", MORE["e.txt"]), ("b.txt", DOCS["b.txt"] + NEW), ("a.txt", None),
             ("0.txt", MORE["0.txt"]), ("f/g.txt", MORE["f/g.txt"]), ("e.txt", None), ("d.txt", NEW + "补充一句。\n")]
    merged = 0
    for name, text in steps:
        if text is None:
            files.pop(name)
            (settings.corpus_dir / name).unlink()
        else:
            files[name] = text
            _write(settings, {name: text})
        index = lifecycle.update(settings, HashEmbedder(), index, [name])
        merged += index.manifest["segments_merged"] > 0
        assert len(index.layout.segments) <= 3
    assert merged >= 2
    _same_everywhere(tmp_path, settings, index, files)


def test_tombstones_past_the_limit_compact_every_segment(tmp_path, monkeypatch):
    monkeypatch.setattr(segments, "MAX_DEAD_SHARE", 0.1)
    settings, index = _live(tmp_path)
    files = dict(DOCS)
    del files["a.txt"]
    (settings.corpus_dir / "a.txt").unlink()
    index = lifecycle.update(settings, HashEmbedder(), index, ["a.txt"])
    assert index.manifest["segments_merged"] == 1 and index.layout.dead_rows() == 0
    _same_everywhere(tmp_path, settings, index, files)


@pytest.mark.parametrize("where", ["before-rename", "before-pointer"])
def test_a_change_killed_before_the_switch_leaves_the_previous_build(tmp_path, monkeypatch, where):
    settings, live = _live(tmp_path)
    _write(settings, {"d.txt": NEW})
    real_replace = os.replace

    def dies(src, dst):
        if (where == "before-rename" and Path(dst).name.startswith("build-")) or (
                where == "before-pointer" and Path(dst).name == store.POINTER):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies)
    with pytest.raises(IndexStoreError):
        lifecycle.update(settings, HashEmbedder(), live, ["d.txt"])
    monkeypatch.setattr(os, "replace", real_replace)
    assert store.current_build(settings.index_dir) == live.path
    _same_index(lifecycle.load(settings.index_dir), _fresh(tmp_path, DOCS))
    # The next change publishes, and the leftover of the failed one is collected.
    changed = lifecycle.update(settings, HashEmbedder(), live, ["d.txt"])
    names = {p.name for p in settings.index_dir.glob("build-*")}
    assert names == {live.path.name, changed.path.name}
    assert not list(settings.index_dir.glob(".tmp-build-*"))
    _same_everywhere(tmp_path, settings, changed, {**DOCS, "d.txt": NEW})


def test_garbage_collection_keeps_every_segment_a_live_build_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(segments, "MAX_SEGMENTS", 3)
    settings, index = _live(tmp_path)
    first = index.path
    files = dict(DOCS)
    for k in range(6):
        name = f"n{k}.txt"
        files[name] = NEW.replace("54例", f"{60 + k}例")
        _write(settings, {name: files[name]})
        replaced = index.path
        index = lifecycle.update(settings, HashEmbedder(), index, [name])
        on_disk = {p for p in settings.index_dir.glob("build-*")}
        wanted = store.referenced_builds(settings.index_dir, index.path) | store.referenced_builds(settings.index_dir, replaced)
        assert on_disk == wanted  # everything read by the live or the just-replaced build, nothing else
        lifecycle.load(settings.index_dir)  # and the live build loads, checksums verified
    assert index.manifest["segments_merged"] or first not in on_disk
    lifecycle.clean_start(settings.index_dir)  # a restart: only what the live build reads stays
    assert {p for p in settings.index_dir.glob("build-*")} == store.referenced_builds(settings.index_dir, index.path)
    _same_everywhere(tmp_path, settings, index, files)


def test_a_damaged_segment_of_an_earlier_build_is_found(tmp_path):
    settings, live = _live(tmp_path)
    _write(settings, {"d.txt": NEW})
    lifecycle.update(settings, HashEmbedder(), live, ["d.txt"])
    (live.path / "sentences.npy").write_bytes(b"broken")
    with pytest.raises(IndexStoreError, match="corrupted"):
        lifecycle.load(settings.index_dir)


def test_bm25_scores_match_the_score_matrix(tmp_path):
    """The query-time BM25 equals bm25s's precomputed Lucene matrix (VectorisedBM25)."""
    from rag.indexing import lexical

    fresh = _fresh(tmp_path, {**DOCS, **MORE})
    matrix = lexical.Bm25.from_flat(fresh.sentence_bm25.terms)
    for q in ["Levy等人纳入了多少例患者？", "鞘内注射 患者 研究", "帕金森病 随访"]:
        np.testing.assert_allclose(fresh.sentence_bm25.scores(q), matrix.scores(q), atol=1e-6)
    assert fresh.sentence_bm25.document_frequencies() == matrix.document_frequencies()


def test_bm25_of_some_rows_is_those_rows_of_the_whole_scoring(tmp_path, monkeypatch):
    """``scores_of`` (candidates only) is bit for bit ``scores()[rows]``: one segment, several with
    tombstones, and one block without a layout."""
    from rag.indexing import lexical
    from rag.ingest.corpus import load_document

    monkeypatch.setattr(segments, "MAX_DEAD_SHARE", 1.0)  # keep the tombstones: no compaction
    settings = _settings(tmp_path / "s", {**DOCS, **MORE})
    built = index_mod.build(settings, HashEmbedder(), progress=False)
    rules = index_mod.structure_rules(settings)
    first, second = sorted(built.documents)[:2]
    changed = index_mod.change(settings, HashEmbedder(), built, {
        first: None, second: load_document(second, "替换\nLevy等人纳入了36例患者,随访一年。\n", rules)})
    assert len(changed.layout.segments) > 1 and changed.layout.dead_rows() > 0
    rng = np.random.default_rng(0)
    for index in (built, changed):
        for bm25 in (index.sentence_bm25, index.chunk_bm25, lexical.SegmentedBm25.from_flat(index.sentence_bm25.terms)):
            for q in QUESTIONS + ["患者 研究 患者", "没有的词"]:
                rows = rng.choice(bm25.size, size=min(40, bm25.size), replace=False)
                assert np.array_equal(bm25.scores_of(q, rows), bm25.scores(q)[rows]), q
            assert bm25.scores_of(QUESTIONS[0], []).shape == (0,)


def test_chunk_rows_read_like_the_list_they_stand_for():
    from rag.ingest.chunks import Chunk

    src = [Chunk(f"d#{i}", "d", "", i, i + 1, (i, i + 1)) for i in range(10)]
    other = [Chunk(f"e#{i}", "e", "", i, i + 1, (i,)) for i in range(3)]
    rows = segments.ChunkRows([(src, 0, 4, 0), (other, 0, 3, 4), (src, 4, 10, 3)])
    want = src[:4] + segments.shifted(other, 4) + segments.shifted(src[4:], 3)
    assert len(rows) == 13 and list(rows) == want and rows == want
    assert [rows[i] for i in range(-13, 13)] == want + want
    assert rows[2:9] == want[2:9]
    spliced = segments.ChunkRows(rows.cut(0, 4) + rows.cut(7, 13, -3))
    assert list(spliced) == src[:4] + segments.shifted(src[4:], 0)[0:0] + segments.shifted(want[7:], -3)
    with pytest.raises(IndexError):
        rows[13]


def test_a_full_rebuild_reuses_a_build_of_several_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(segments, "MAX_DEAD_SHARE", 0.9)  # keep the tombstone: a tiny corpus
    settings, live = _live(tmp_path)
    _write(settings, {"d.txt": NEW})
    changed = lifecycle.update(settings, HashEmbedder(), live, ["d.txt"])
    (settings.corpus_dir / "a.txt").unlink()
    changed = lifecycle.update(settings, HashEmbedder(), changed, ["a.txt"])
    assert len(changed.layout.segments) == 2 and changed.layout.dead_rows()
    _write(settings, {"e.txt": MORE["e.txt"]})
    rebuilt = lifecycle.rebuild(settings, HashEmbedder(), progress=False)  # reuses the live build read from disk
    assert len(rebuilt.layout.segments) == 1
    files = {**DOCS, "d.txt": NEW, "e.txt": MORE["e.txt"]}
    del files["a.txt"]
    _same_everywhere(tmp_path, settings, rebuilt, files)


def test_a_change_naming_a_collected_build_is_refused_and_the_live_one_stays(tmp_path):
    settings, live = _live(tmp_path)
    _write(settings, {"d.txt": NEW})
    changed = lifecycle.update(settings, HashEmbedder(), live, ["d.txt"])
    import shutil

    shutil.rmtree(live.path)  # as if another process's rebuild had collected it
    _write(settings, {"e.txt": MORE["e.txt"]})
    with pytest.raises(IndexStoreError, match="gone"):
        lifecycle.update(settings, HashEmbedder(), changed, ["e.txt"])
    assert store.current_build(settings.index_dir) == changed.path
    assert not list(settings.index_dir.glob(".tmp-build-*"))  # the refused build's folder is gone


def test_a_merge_can_keep_its_sentence_vectors_in_a_file(tmp_path, monkeypatch):
    from rag.indexing import spill

    settings, index = _live(tmp_path)
    _write(settings, {"d.txt": NEW, "e.txt": MORE["e.txt"]})
    index = lifecycle.update(settings, HashEmbedder(), index, ["d.txt", "e.txt"])
    which = list(range(len(index.layout.segments)))
    assert len(which) >= 2
    in_memory = segments.merge(index, which)["layout"].segments[-1].sentence_vectors
    monkeypatch.setattr(spill, "MIN_BYTES", 0)
    in_file = segments.merge(index, which, tmp_path / "views")["layout"].segments[-1].sentence_vectors
    assert _file_backed(in_file) and not _file_backed(in_memory)
    assert np.array_equal(in_file, in_memory) and list((tmp_path / "views").iterdir()) == []


def test_a_documents_sentence_ids_are_its_rows_in_the_view(tmp_path):
    settings, index = _live(tmp_path)
    _write(settings, {"d.txt": NEW, "e.txt": MORE["e.txt"]})
    index = lifecycle.update(settings, HashEmbedder(), index, ["d.txt", "e.txt"])  # two segments, one replaced document
    seen = []
    for doc_id in index.documents:
        ids = index.layout.sentence_ids(doc_id)
        assert len(ids) == len(index.documents[doc_id].sentences) > 0
        assert all(index.sentences[i].doc_id == doc_id for i in ids)
        seen += list(ids)
    assert sorted(seen) == list(range(len(index.sentences)))
    assert index.layout.sentence_ids("absent.txt") == range(0)
