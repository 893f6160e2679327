"""Unit tests of the sentence splitter (rag.ingest.splitter): hard cases and span properties."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.ingest.splitter import split_spans

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "corpus" / "msc-neuro-review.zh.txt"


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_spans(text)]


def assert_span_properties(text: str, spans: list[tuple[int, int]]) -> None:
    """Spans are in order, disjoint, in bounds, trimmed, non-empty, and cover every non-space character."""
    prev_end = 0
    covered = bytearray(len(text))
    for s, e in spans:
        assert isinstance(s, int) and isinstance(e, int)
        assert prev_end <= s < e <= len(text), (s, e, prev_end)
        piece = text[s:e]
        assert piece, (s, e)
        assert piece == piece.strip(), repr(piece)
        assert "\n" not in piece, repr(piece)  # line breaks always end a sentence
        for k in range(s, e):
            covered[k] = 1
        prev_end = e
    lost = [(i, c) for i, c in enumerate(text) if not c.isspace() and not covered[i]]
    assert not lost, lost[:10]


# ---------------------------------------------------------------- hard cases


def test_split_decimal_inside_cjk_sentence_is_one_sentence():
    assert sentences("平均病程为卒中后4.2年。") == ["平均病程为卒中后4.2年。"]


@pytest.mark.parametrize("text", ["1×10⁸个细胞", "Aβ42", "3.0×10⁷个细胞/2mL)"])
def test_split_scientific_notation_and_units_never_split(text):
    assert sentences(text) == [text]
    assert sentences(f"剂量为{text}。下一句。") == [f"剂量为{text}。", "下一句。"]


def test_split_superscripts_not_normalised():
    text = "剂量为1×10⁸个细胞。"
    (span,) = split_spans(text)
    assert text[span[0]:span[1]] == text
    assert "10⁸" in text[span[0]:span[1]]
    assert "108" not in text[span[0]:span[1]]


def test_split_et_al_is_not_a_sentence_end():
    assert sentences("Smith et al. reported this. Next one.") == ["Smith et al. reported this.", "Next one."]


def test_split_eg_is_not_a_sentence_end():
    assert sentences("e.g. this works. Then that!") == ["e.g. this works.", "Then that!"]


def test_split_numbered_items_start_their_sentence():
    got = sentences("(1)细胞递送:难题。(2)作用机制")
    assert got == ["(1)细胞递送:难题。", "(2)作用机制"]
    assert got[0].startswith("(1)") and got[1].startswith("(2)")


def test_split_fullwidth_numbered_items_start_their_sentence():
    got = sentences("（1）细胞递送：难题。（2）作用机制")
    assert got == ["（1）细胞递送：难题。", "（2）作用机制"]


def test_split_closing_quote_stays_with_its_sentence():
    got = sentences("他说:“好的。”然后走了。")
    assert got == ["他说:“好的。”", "然后走了。"]
    assert got[0].endswith("”")


def test_split_closing_bracket_stays_with_its_sentence():
    assert sentences("(见上文。)然后如此。") == ["(见上文。)", "然后如此。"]
    assert sentences("Done.) Next.") == ["Done.)", "Next."]


def test_split_runs_of_marks_stay_together():
    got = sentences("真的吗？！是的……好。")
    assert got == ["真的吗？！", "是的……", "好。"]


def test_split_ascii_question_and_exclamation_end_sentences():
    assert sentences("Hello! World? Yes.") == ["Hello!", "World?", "Yes."]


def test_split_ascii_semicolon_before_cjk_ends_sentence():
    assert sentences("下降;此外有改善。") == ["下降;", "此外有改善。"]


def test_split_author_list_not_split_at_initials():
    text = "Akhmetzyanova, E.; Shulman, I.; Fakhrutdinova, T."
    assert sentences(text) == [text]


def test_split_url_and_decimal_not_split_inside():
    text = "见 https://doi.org/10.3390/x 和 3.5 mg 剂量。"
    assert sentences(text) == [text]
    assert sentences("https://doi.org/10.3390/x") == ["https://doi.org/10.3390/x"]
    assert sentences("3.5 mg") == ["3.5 mg"]


def test_split_line_breaks_always_end_a_sentence():
    assert sentences("第一行没有句号\n第二行") == ["第一行没有句号", "第二行"]
    assert sentences("a\nb") == ["a", "b"]
    assert sentences("Smith et al.\nreported") == ["Smith et al.", "reported"]


@pytest.mark.parametrize("text", ["", " ", "   ", "\n", "\n\n\n", " \t \n \r\n ", "\u3000\n"])
def test_split_blank_input_gives_no_sentences(text):
    assert split_spans(text) == []


def test_split_spans_trimmed_of_surrounding_spaces():
    text = "  你好。  世界。 "
    spans = split_spans(text)
    assert [text[s:e] for s, e in spans] == ["你好。", "世界。"]
    assert spans[0] == (2, 5)


def test_split_crlf_line_ends_do_not_leak():
    text = "第一行。\r\n第二行。\r\n第三行\r\n"
    got = sentences(text)
    assert got == ["第一行。", "第二行。", "第三行"]
    assert all("\r" not in s and "\n" not in s for s in got)


def test_split_start_end_window_limits_spans():
    text = "前言。正文一。正文二。后记。"
    spans = split_spans(text, 3, 11)
    assert [text[s:e] for s, e in spans] == ["正文一。", "正文二。"]
    assert all(3 <= s and e <= 11 for s, e in spans)


def test_split_ascii_opening_quote_after_cjk_ender_starts_next_sentence():
    assert sentences('好。"下一句"') == ['好。', '"下一句"']


# ---------------------------------------------------------------- properties

_ALPHABET = (
    list("间充质干细胞治疗卒中研究结果神经系统疾病的临床案例")
    + list("abcdeXYZ")
    + list("0123456789")
    + [" ", " ", "\n", "\r\n", "\t"]
    + list("。！？；….!?;,:()“”")
    + ["et al.", "e.g.", "4.2", "10⁸", "“", "……"]
)
texts = st.lists(st.sampled_from(_ALPHABET), max_size=60).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_split_spans_properties_hold_for_mixed_text(text):
    assert_span_properties(text, split_spans(text))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, texts)
def test_split_spans_independent_across_line_break(a, b):
    """Sentences of two lines joined by a newline are the sentences of each line."""
    text = a + "\n" + b
    expected = sentences(a) + sentences(b)
    assert sentences(text) == expected


def test_split_spans_properties_hold_for_real_review():
    text = REVIEW.read_bytes().decode("utf-8")
    spans = split_spans(text)
    assert len(spans) > 100
    assert_span_properties(text, spans)


def test_split_real_review_keeps_hard_sentences_whole():
    text = REVIEW.read_bytes().decode("utf-8")
    got = sentences(text)
    assert any(s.startswith("Bang等人于2005年") and "1×10⁸个细胞" in s and s.endswith("下降趋势;") for s in got)
    assert any("平均病程为卒中后4.2年" in s for s in got)
    assert any("Akhmetzyanova, E.; Shulman, I.; Fakhrutdinova, T.; Rizvanov, A.; Mukhamedshina, Y." in s for s in got)
    assert "https://doi.org/10.3390/biologics5040037" in got


def test_split_a_mark_inside_brackets_ends_no_sentence():
    assert sentences("牛车水（；）是新加坡的唐人街。它很有名。") == ["牛车水（；）是新加坡的唐人街。", "它很有名。"]
    assert sentences("结果见表1（P<0.05；n=30）。下一句。") == ["结果见表1（P<0.05；n=30）。", "下一句。"]
    # A bracket left open, or a bracketed sentence of its own, is split as before.
    assert sentences("未闭合（括号。下一句。") == ["未闭合（括号。", "下一句。"]
    assert sentences("他说（这很好。）然后走了。") == ["他说（这很好。）", "然后走了。"]
