"""Unit tests of corpus reading (rag.ingest.corpus): sections, captions, the non-citable tail, files and offsets."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.ingest.corpus import (
    StructureRules,
    corpus_hashes,
    list_corpus_files,
    load_corpus,
    load_document,
    read_text,
)
from rag.errors import CorpusError
from rag.indexing.index import structure_rules

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"


@pytest.fixture(autouse=True)
def _no_rag_env(monkeypatch):
    """Settings read RAG_* variables; the tests must not depend on the caller's environment."""
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)


def default_rules(tmp_path: Path) -> StructureRules:
    return structure_rules(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", embedding_model="hash-test"))


def texts(doc) -> list[str]:
    return [doc.text[s.start:s.end] for s in doc.sentences]


def by_text(doc, fragment: str):
    hits = [s for s in doc.sentences if fragment in doc.text[s.start:s.end]]
    assert len(hits) == 1, (fragment, hits)
    return hits[0]


def assert_offsets_valid(doc) -> None:
    for s in doc.sentences:
        piece = doc.text[s.start:s.end]
        assert piece and piece == piece.strip()
        assert "\r" not in piece and "\n" not in piece


@pytest.fixture(scope="module")
def review():
    rules = structure_rules(Settings(corpus_dir=REVIEW.parent, index_dir=Path("unused"), embedding_model="hash-test"))
    return load_document(REVIEW.name, read_text(REVIEW), rules)


# ---------------------------------------------------------------- sections on the real review


def test_corpus_heading_is_section_of_bang_2005_sentence(review):
    s = by_text(review, "Bang等人于2005年开展的一项研究")
    assert s.section == "间充质干细胞治疗中风的临床案例"
    assert s.citable


def test_corpus_cited_title_matching_caption_is_not_a_section(review):
    title = "静脉注射间充质干细胞治疗缺血性中风的疗效和安全性"
    s = by_text(review, title)
    assert review.text[s.start:s.end] == title
    assert s.section == "间充质干细胞治疗中风的临床案例"
    assert title not in {x.section for x in review.sentences}
    # the sentence after the title is still in the stroke section
    assert by_text(review, "研究结果之间的差异可能源于多种因素").section == "间充质干细胞治疗中风的临床案例"


def test_corpus_lead_in_line_with_comma_and_colon_is_sentence(review):
    lead = "尽管间充质干细胞的应用仍存在一些问题和局限性,但生物技术的发展开辟了新的前景:"
    s = by_text(review, lead)
    assert review.text[s.start:s.end] == lead
    assert s.section == "间充质干细胞及其衍生物治疗神经系统疾病的新的可能性和方法"
    assert lead not in {x.section for x in review.sentences}


def test_corpus_real_review_offsets_valid(review):
    assert len(review.sentences) > 100
    assert_offsets_valid(review)
    assert review.sha256 == hashlib.sha256(REVIEW.read_bytes()).hexdigest()
    starts = [s.start for s in review.sentences]
    assert starts == sorted(starts)


def test_corpus_real_review_tail_noncitable_by_default(review):
    for marker in ("免责说明", "郑重声明"):
        s = by_text(review, marker)
        assert not s.citable
    # the tail is kept in the text
    assert "发表回复" in review.text
    # everything before the tail stays citable
    first_tail = next(i for i, s in enumerate(review.sentences) if not s.citable)
    assert all(s.citable for s in review.sentences[:first_tail])
    assert not any(s.citable for s in review.sentences[first_tail:])


def test_corpus_real_review_tail_citable_when_rule_empty(review):
    rules = dataclasses.replace(
        structure_rules(Settings(corpus_dir=REVIEW.parent, index_dir=Path("unused"), embedding_model="hash-test")),
        noncitable_pattern="",
    )
    doc = load_document(REVIEW.name, read_text(REVIEW), rules)
    assert all(s.citable for s in doc.sentences)
    assert texts(doc) == texts(review)


# ---------------------------------------------------------------- sections on small documents


def test_corpus_short_line_without_ender_is_heading(tmp_path):
    doc = load_document("d.txt", "引言句子。\n研究方法\n我们做了实验。\n", default_rules(tmp_path))
    assert [(s.section, doc.text[s.start:s.end]) for s in doc.sentences] == [
        ("", "引言句子。"),
        ("研究方法", "我们做了实验。"),
    ]


def test_corpus_caption_line_stays_sentence_in_current_section(tmp_path):
    text = "临床案例\n第一句。\n静脉注射间充质干细胞治疗缺血性中风的疗效和安全性\n第二句。\n"
    doc = load_document("d.txt", text, default_rules(tmp_path))
    assert [(s.section, doc.text[s.start:s.end]) for s in doc.sentences] == [
        ("临床案例", "第一句。"),
        ("临床案例", "静脉注射间充质干细胞治疗缺血性中风的疗效和安全性"),
        ("临床案例", "第二句。"),
    ]


@pytest.mark.parametrize(
    "caption",
    ["自体间充质干细胞移植治疗完全性颈髓损伤:一项初步研究", "鞘内注射脂肪来源间充质干细胞治疗创伤性脊髓损伤:I期试验"],
)
def test_corpus_caption_patterns_are_not_sections(tmp_path, caption):
    doc = load_document("d.txt", f"章节\n{caption}\n正文。\n", default_rules(tmp_path))
    assert [s.section for s in doc.sentences] == ["章节", "章节"]
    assert texts(doc) == [caption, "正文。"]


def test_corpus_caption_is_heading_when_caption_rule_empty(tmp_path):
    rules = dataclasses.replace(default_rules(tmp_path), caption_pattern="")
    title = "静脉注射间充质干细胞治疗缺血性中风的疗效和安全性"
    doc = load_document("d.txt", f"章节\n{title}\n正文。\n", rules)
    assert [(s.section, doc.text[s.start:s.end]) for s in doc.sentences] == [(title, "正文。")]


@pytest.mark.parametrize("lead", ["尽管存在局限性,但前景广阔:", "尽管存在局限性，但前景广阔：", "因此,我们认为"])
def test_corpus_line_with_comma_is_sentence_not_heading(tmp_path, lead):
    doc = load_document("d.txt", f"章节\n{lead}\n正文。\n", default_rules(tmp_path))
    assert texts(doc) == [lead, "正文。"]
    assert {s.section for s in doc.sentences} == {"章节"}


def test_corpus_long_line_without_ender_is_sentence(tmp_path):
    long_line = "这" * 41
    doc = load_document("d.txt", f"章节\n{long_line}\n", default_rules(tmp_path))
    assert texts(doc) == [long_line]
    assert doc.sentences[0].section == "章节"


@pytest.mark.parametrize("md", ["# 标题", "## 标题", "###### 标题", "   # 标题"])
def test_corpus_markdown_heading_is_section(tmp_path, md):
    doc = load_document("d.md", f"{md}\n正文一句。\n", default_rules(tmp_path))
    assert [(s.section, doc.text[s.start:s.end]) for s in doc.sentences] == [("标题", "正文一句。")]


def test_corpus_markdown_heading_even_when_long_or_ending_with_mark(tmp_path):
    heading = "间充质干细胞治疗" * 6 + "。"
    doc = load_document("d.md", f"# {heading}\n正文。\n", default_rules(tmp_path))
    assert doc.sentences[0].section == heading


def test_corpus_tail_noncitable_with_default_rule_and_kept(tmp_path):
    text = "正文。\n免责说明:本文仅供参考。\n郑重声明:版权归原作者。\n发表回复:写得好。\n"
    doc = load_document("d.txt", text, default_rules(tmp_path))
    assert texts(doc) == ["正文。", "免责说明:本文仅供参考。", "郑重声明:版权归原作者。", "发表回复:写得好。"]
    assert [s.citable for s in doc.sentences] == [True, False, False, False]


@pytest.mark.parametrize("marker", ["免责说明", "郑重声明", "发表回复"])
def test_corpus_each_tail_marker_starts_noncitable_tail(tmp_path, marker):
    text = f"正文一。\n{marker}:内容。\n之后一句。\n"
    doc = load_document("d.txt", text, default_rules(tmp_path))
    assert [s.citable for s in doc.sentences] == [True, False, False]


def test_corpus_tail_citable_when_rule_empty(tmp_path):
    rules = dataclasses.replace(default_rules(tmp_path), noncitable_pattern="")
    text = "正文。\n免责说明:本文仅供参考。\n郑重声明:版权归原作者。\n发表回复:写得好。\n"
    doc = load_document("d.txt", text, rules)
    assert len(doc.sentences) == 4
    assert all(s.citable for s in doc.sentences)


def test_corpus_tail_rule_configurable_through_settings(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("正文。\n免责说明:仅供参考。\n", encoding="utf-8")
    for pattern, expected in ((None, [True, False]), ("", [True, True]), ("^正文", [False, False])):
        kwargs = {} if pattern is None else {"noncitable_pattern": pattern}
        s = Settings(corpus_dir=tmp_path / "c", index_dir=tmp_path / "i", embedding_model="hash-test", **kwargs)
        (doc,) = load_corpus(s.corpus_dir, structure_rules(s))
        assert [x.citable for x in doc.sentences] == expected, pattern


def test_corpus_marker_in_middle_of_line_does_not_start_tail(tmp_path):
    doc = load_document("d.txt", "正文提到免责说明这个词。\n下一句。\n", default_rules(tmp_path))
    assert all(s.citable for s in doc.sentences)


# ---------------------------------------------------------------- files and folders


def test_corpus_unsupported_file_raises_naming_it(tmp_path):
    (tmp_path / "a.txt").write_text("正文。", encoding="utf-8")
    (tmp_path / "notes.xlsx").write_bytes(b"PK")
    for fn in (list_corpus_files, corpus_hashes, lambda p: load_corpus(p, default_rules(p))):
        with pytest.raises(CorpusError, match="notes.xlsx"):
            fn(tmp_path)


def test_corpus_damaged_pdf_raises_naming_it(tmp_path):
    (tmp_path / "a.txt").write_text("正文。", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    assert [p.name for p in list_corpus_files(tmp_path)] == ["a.txt", "notes.pdf"]  # a supported type
    for fn in (corpus_hashes, lambda p: load_corpus(p, default_rules(p))):
        with pytest.raises(CorpusError, match="notes.pdf.*not a readable PDF"):
            fn(tmp_path)


def test_corpus_unsupported_file_in_subfolder_raises(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("正文。", encoding="utf-8")
    (tmp_path / "sub" / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(CorpusError, match="data.xlsx"):
        list_corpus_files(tmp_path)


def test_corpus_invalid_utf8_raises_naming_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes("正文".encode("gbk") + b"\xff\xfe")
    with pytest.raises(CorpusError, match=r"bad\.txt.*not valid UTF-8"):
        load_corpus(tmp_path, default_rules(tmp_path))
    with pytest.raises(CorpusError, match="bad.txt"):
        corpus_hashes(tmp_path)


def test_corpus_missing_folder_raises(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "nope", default_rules(tmp_path))
    with pytest.raises(CorpusError, match="not found"):
        corpus_hashes(tmp_path / "nope")


def test_corpus_path_is_a_file_raises(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("正文。", encoding="utf-8")
    with pytest.raises(CorpusError):
        list_corpus_files(f)


def test_corpus_empty_folder_raises(tmp_path):
    with pytest.raises(CorpusError, match="no documents"):
        load_corpus(tmp_path, default_rules(tmp_path))


def test_corpus_only_hidden_files_counts_as_empty(tmp_path):
    (tmp_path / ".gitkeep").write_text("")
    with pytest.raises(CorpusError, match="no documents"):
        list_corpus_files(tmp_path)


def test_corpus_hidden_files_and_folders_ignored(tmp_path):
    (tmp_path / ".gitkeep").write_text("")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01\xff")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "index.pdf").write_bytes(b"\xff")
    (tmp_path / "a.txt").write_text("正文。", encoding="utf-8")
    assert [p.name for p in list_corpus_files(tmp_path)] == ["a.txt"]
    assert list(corpus_hashes(tmp_path)) == ["a.txt"]


def test_corpus_md_files_read_and_ordered_by_path(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.md").write_text("# 标题\n第二篇。\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("第一篇。\n", encoding="utf-8")
    (tmp_path / "sub" / "c.MD").write_text("第三篇。\n", encoding="utf-8")
    docs = load_corpus(tmp_path, default_rules(tmp_path))
    assert [d.doc_id for d in docs] == ["a.txt", "b.md", "sub/c.MD"]
    assert texts(docs[1]) == ["第二篇。"]
    assert docs[1].sentences[0].section == "标题"
    assert all(s.doc_id == d.doc_id for d in docs for s in d.sentences)


def test_corpus_hashes_match_file_bytes_and_documents(tmp_path):
    shutil.copy(REVIEW, tmp_path / REVIEW.name)
    (tmp_path / "b.md").write_bytes("# 标题\r\n正文。\r\n".encode("utf-8"))
    hashes = corpus_hashes(tmp_path)
    docs = load_corpus(tmp_path, default_rules(tmp_path))
    assert hashes == {d.doc_id: d.sha256 for d in docs}
    for doc_id, digest in hashes.items():
        assert digest == hashlib.sha256((tmp_path / doc_id).read_bytes()).hexdigest()


def test_corpus_crlf_file_keeps_offsets_valid(tmp_path):
    raw = "标题\r\n第一句。第二句。\r\n\r\n另一节\r\n最后一句。\r\n"
    (tmp_path / "crlf.txt").write_bytes(raw.encode("utf-8"))
    (doc,) = load_corpus(tmp_path, default_rules(tmp_path))
    assert doc.text == raw  # no newline translation
    assert_offsets_valid(doc)
    assert [(s.section, doc.text[s.start:s.end]) for s in doc.sentences] == [
        ("标题", "第一句。"),
        ("标题", "第二句。"),
        ("另一节", "最后一句。"),
    ]
    assert doc.sha256 == hashlib.sha256(raw.encode("utf-8")).hexdigest()


def test_corpus_crlf_real_review_same_sentences_as_lf(tmp_path):
    text = read_text(REVIEW)
    (tmp_path / "r.txt").write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    (crlf,) = load_corpus(tmp_path, default_rules(tmp_path))
    lf = load_document("r.txt", text, default_rules(tmp_path))
    assert_offsets_valid(crlf)
    assert texts(crlf) == texts(lf)
    assert [(s.section, s.citable) for s in crlf.sentences] == [(s.section, s.citable) for s in lf.sentences]


def test_corpus_bom_at_file_start_keeps_offsets_valid(tmp_path):
    raw = "\ufeff第一句。第二句。\n标题\n第三句。\n"
    (tmp_path / "bom.txt").write_bytes(raw.encode("utf-8"))
    (doc,) = load_corpus(tmp_path, default_rules(tmp_path))
    assert doc.text == raw
    for s in doc.sentences:
        assert doc.quote(s.start, s.end) == doc.text[s.start:s.end]
    assert [doc.text[s.start:s.end].lstrip("\ufeff") for s in doc.sentences] == ["第一句。", "第二句。", "第三句。"]
    assert doc.sentences[2].section == "标题"
    assert doc.sha256 == hashlib.sha256(raw.encode("utf-8")).hexdigest()


def test_corpus_bom_before_markdown_heading_gives_clean_section(tmp_path):
    (tmp_path / "bom.md").write_bytes("\ufeff# 标题\n正文。\n".encode("utf-8"))
    (doc,) = load_corpus(tmp_path, default_rules(tmp_path))
    assert doc.sentences[0].section == "标题"
