"""Answers written from study records: a contrast led by the document's own reason, a comparison,
a list, or one field of the study a conversation is about; every value quoted and cited.

A field the document does not give is said to be missing ("文档未给出"), never filled in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from rag.answer.language import is_english
from rag.ingest.corpus import Document
from rag.schema import Answer, Citation, ShortAnswer, StudyTable, TableCell, TableRow
from rag.studies.detect import named_mentions
from rag.studies.fields import clauses
from rag.studies.questions import StudyQuestion
from rag.studies.records import FIELDS, Quote, Study

# A sentence that goes on with the comparison before it ("这些结果的差异可能源于…").
_GOES_ON = re.compile(r"(?:这些|这种|这一|此|其|二者|两者|这)")
_REASON = re.compile(r"原因|源于|由于|因为|归因|可能是|解释|because|due to|attribut", re.I)


class _Cites:
    """The citations of one answer, numbered in order of first use. A quoted value is cited by the
    sentence it stands in (the context a reader checks it against); one citation per sentence."""

    def __init__(self, documents: Mapping[str, Document]):
        self.documents, self.list, self.by_span = documents, [], {}
        self._read: dict[str, Document] = {}  # a large index makes a document's sentences on each lookup

    def mark(self, doc_id: str, start: int, end: int) -> int:
        """The marker of the sentence holding ``start..end`` (of the span itself if none does)."""
        doc = self._read.get(doc_id) or self._read.setdefault(doc_id, self.documents[doc_id])
        holder = next((s for s in doc.sentences if s.start <= start < s.end), None)
        if holder is not None and end <= holder.end:
            start, end = holder.start, holder.end
        key = (doc_id, start, end)
        if key not in self.by_span:
            n = len(self.list) + 1
            self.list.append(Citation(id=f"{doc_id}#{start}-{end}", doc_id=doc_id,
                                      section=holder.section if holder else "", text=doc.text[start:end],
                                      start=start, end=end, n=n, score=1.0))
            self.by_span[key] = n
        return self.by_span[key]

    def cell(self, doc_id: str, quote: Quote) -> TableCell:
        """A table cell of a quoted value (its exact span), with the marker of its sentence."""
        return TableCell(text=quote.text, doc_id=doc_id, start=quote.start, end=quote.end,
                         n=self.mark(doc_id, quote.start, quote.end))


def answer(question: str, asked: StudyQuestion, documents: dict[str, Document]) -> Answer:
    """The cited answer to a study question."""
    english = is_english(question)
    cites = _Cites(documents)
    if asked.kind in ("field", "control"):
        text, short = _field_text(asked, cites, english)
        return Answer(question=question, answer=text, answerable=True, citations=cites.list, short_answer=short)
    short = None
    if asked.kind == "contrast":
        reason = reason_sentence(documents[asked.studies[0].doc_id], asked.studies)
        short = _reason_clause(documents[asked.studies[0].doc_id], reason) if reason else None
    else:
        reason = None
    lead = _lead(asked, cites, documents, english, reason)
    table = _table(asked, cites, english)
    lines = [lead] + [_row_line(row, table.labels, english) for row in table.rows]
    return Answer(question=question, answer="\n".join(lines), answerable=True, citations=cites.list, table=table,
                  short_answer=short)


def _lead(asked: StudyQuestion, cites: _Cites, documents: dict[str, Document], english: bool,
          reason: tuple[int, int] | None) -> str:
    """The answer's first line: the document's reason (contrast), or what the table shows."""
    labels = [s.label.text for s in asked.studies]
    if asked.kind == "contrast":
        doc_id = asked.studies[0].doc_id
        if reason is None:
            return ("The document gives no reason for the difference; the studies differ as follows:" if english else
                    f"文档没有说明{labels[0]}与{labels[1]}的研究结论为何不一致；两项研究的不同之处如下：")
        quoted = f"{documents[doc_id].text[reason[0]:reason[1]]}[{cites.mark(doc_id, *reason)}]"
        return (f"The document's reason: {quoted} How the two studies differ:" if english else
                f"文档给出的原因：{quoted}两项研究的不同之处如下：")
    if asked.kind == "list":
        names = "、".join(f"{s.label.text}[{cites.mark(s.doc_id, s.label.start, s.label.end)}]" for s in asked.studies)
        return (f"{len(asked.studies)} studies: {names}." if english else f"文档中有{len(asked.studies)}项：{names}。")
    return "The studies side by side:" if english else "两项研究对比如下：" if len(labels) == 2 else "各项研究对比如下："


def reason_sentence(document: Document, studies: tuple[Study, ...]) -> tuple[int, int] | None:
    """Where the document explains how the studies differ: of the sentence naming all of them and the
    sentences of its paragraph that go on with it ("这些结果的差异可能源于…"), the fullest one that
    gives a cause."""
    authors = {s.author for s in studies}
    text, sentences = document.text, document.sentences
    for i, sentence in enumerate(sentences):
        named = {m.author for m in named_mentions(text, sentence.start, sentence.end)}
        if not authors <= named:
            continue
        run = [(sentence.start, sentence.end)]
        for after in sentences[i + 1:]:
            if "\n" in text[run[-1][1]:after.start] or not _GOES_ON.match(text, after.start):
                break
            run.append((after.start, after.end))
        causes = [(s, e) for s, e in run if _REASON.search(text, s, e)]
        if causes:
            return max(causes, key=lambda span: span[1] - span[0])
    return None


def _reason_clause(document: Document, reason: tuple[int, int]) -> ShortAnswer:
    """The clause of the reason sentence that names the cause, as the short answer."""
    for cs, ce in clauses(document.text, *reason):
        if _REASON.search(document.text, cs, ce):
            return ShortAnswer(text=document.text[cs:ce], doc_id=document.doc_id, start=cs, end=ce)
    return ShortAnswer(text=document.text[reason[0]:reason[1]], doc_id=document.doc_id, start=reason[0], end=reason[1])


def _table(asked: StudyQuestion, cites: _Cites, english: bool) -> StudyTable:
    """The asked fields across the studies; a contrast keeps only the rows in which they differ."""
    rows = []
    for name in _row_fields(asked.fields):
        values = [_values(s, name) for s in asked.studies]
        texts = [tuple(q.text for q in v) for v in values]
        if not any(texts) or (asked.kind == "contrast" and len(set(texts)) == 1):
            continue  # neither gives it, or (in a contrast) they do not differ
        cells = [[cites.cell(s.doc_id, q) for q in v] for s, v in zip(asked.studies, values)]
        rows.append(TableRow(field=_heading(name, english), cells=cells))
    return StudyTable(studies=[s.id for s in asked.studies], labels=[s.label.text for s in asked.studies], rows=rows)


def _heading(name: str, english: bool) -> str:
    """A row's heading; the patient row holds the total and the arms."""
    if name == "patients":
        return "patients" if english else "患者人数"
    return FIELDS[name][1 if english else 0]


def _row_fields(fields: tuple[str, ...]) -> list[str]:
    """Table rows: patients and arms make one row of patient numbers."""
    return [f for f in fields if f != "arms"]


def _values(study: Study, name: str) -> list[Quote]:
    """A field's quoted values; the patient row gives the total and each arm's count."""
    if name == "patients":
        return ([study.patients] if study.patients else []) + [a.span for a in study.arms]
    value = study.field(name)
    return [value] if value is not None else []


def _row_line(row: TableRow, labels: list[str], english: bool) -> str:
    """One table row as a line of the answer text, values that share a sentence sharing its marker."""
    missing = "not given in the document" if english else "文档未给出"
    parts = []
    for label, cell in zip(labels, row.cells):
        value = " ".join(c.text + (f"[{c.n}]" if i == len(cell) - 1 or cell[i + 1].n != c.n else "")
                         for i, c in enumerate(cell)) if cell else missing
        parts.append(f"{label}: {value}" if english else f"{label}：{value}")
    return f"- {row.field}: " + "; ".join(parts) if english else f"- {row.field}：" + "；".join(parts)


def _field_text(asked: StudyQuestion, cites: _Cites, english: bool) -> tuple[str, ShortAnswer | None]:
    """A follow-up answered from the one study's record, the value first; a missing field is said to be missing."""
    study = asked.studies[0]
    label = study.label.text
    if asked.kind == "control":
        values = [a.span for a in study.arms if re.search(r"对照|安慰剂|control|placebo", a.name.text, re.I)]
        what = "a control group" if english else "对照组人数"
    else:
        values = [q for name in _row_fields(asked.fields) for q in _values(study, name)]
        what = " / ".join(_heading(n, english) for n in _row_fields(asked.fields))
    if not values:
        at = cites.mark(study.doc_id, study.label.start, study.label.end)
        return (f"The document does not give {what} for {label}[{at}]." if english else
                f"文档未给出{label}这项研究的{what}[{at}]。"), None
    quoted = "；".join(f"{q.text}[{cites.mark(study.doc_id, q.start, q.end)}]" for q in values)
    first = values[0]
    short = ShortAnswer(text=first.text, doc_id=study.doc_id, start=first.start, end=first.end)
    return (f"{quoted} ({label})." if english else f"{quoted}（{label}）。"), short
