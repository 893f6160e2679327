"""Answers written from study records: a contrast led by the document's own reason, a comparison,
a list, or one field of the study a conversation is about; every value quoted and cited.

A field the document does not give is said to be missing ("文档未给出"), never filled in.
"""

from __future__ import annotations

import re

from rag.answer.language import is_english
from rag.ingest.corpus import Document
from rag.schema import Answer, Citation, StudyTable, TableCell, TableRow
from rag.studies.detect import named_mentions
from rag.studies.questions import StudyQuestion
from rag.studies.records import FIELDS, Quote, Study

# A sentence that goes on with the comparison before it ("这些结果的差异可能源于…").
_GOES_ON = re.compile(r"(?:这些|这种|这一|此|其|二者|两者|这)")
_REASON = re.compile(r"原因|源于|由于|因为|归因|可能是|解释|because|due to|attribut", re.I)


class _Cites:
    """The citations of one answer, numbered in order of first use, one per distinct span."""

    def __init__(self, documents: dict[str, Document]):
        self.documents, self.list, self.by_span = documents, [], {}

    def mark(self, doc_id: str, start: int, end: int) -> int:
        """The marker of a span, citing it on first use."""
        key = (doc_id, start, end)
        if key not in self.by_span:
            doc = self.documents[doc_id]
            section = next((s.section for s in doc.sentences if s.start <= start < s.end), "")
            n = len(self.list) + 1
            self.list.append(Citation(id=f"{doc_id}#{start}-{end}", doc_id=doc_id, section=section,
                                      text=doc.text[start:end], start=start, end=end, n=n, score=1.0))
            self.by_span[key] = n
        return self.by_span[key]

    def cell(self, doc_id: str, quote: Quote) -> TableCell:
        """A table cell of a quoted value, cited."""
        return TableCell(text=quote.text, doc_id=doc_id, start=quote.start, end=quote.end,
                         n=self.mark(doc_id, quote.start, quote.end))


def answer(question: str, asked: StudyQuestion, documents: dict[str, Document]) -> Answer:
    """The cited answer to a study question."""
    english = is_english(question)
    cites = _Cites(documents)
    if asked.kind in ("field", "control"):
        text = _field_text(asked, cites, english)
        return Answer(question=question, answer=text, answerable=True, citations=cites.list)
    lead = _lead(question, asked, cites, documents, english)
    table = _table(asked, cites, english)
    lines = [lead] + [_row_line(row, table.labels, english) for row in table.rows]
    return Answer(question=question, answer="\n".join(lines), answerable=True, citations=cites.list, table=table)


def _lead(question: str, asked: StudyQuestion, cites: _Cites, documents: dict[str, Document], english: bool) -> str:
    """The answer's first line: the document's reason (contrast), or what the table shows."""
    labels = [s.label.text for s in asked.studies]
    if asked.kind == "contrast":
        reason = reason_sentences(documents[asked.studies[0].doc_id], asked.studies)
        if not reason:
            return ("The document gives no reason for the difference; the studies differ as follows:" if english else
                    f"文档没有说明{labels[0]}与{labels[1]}的研究结论为何不一致；两项研究的不同之处如下：")
        quoted = "".join(f"{documents[asked.studies[0].doc_id].text[s:e]}[{cites.mark(asked.studies[0].doc_id, s, e)}]"
                         for s, e in reason)
        return (f"The document's reason: {quoted} How the two studies differ:" if english else
                f"文档给出的原因：{quoted}两项研究的不同之处如下：")
    if asked.kind == "list":
        names = "、".join(f"{s.label.text}[{cites.mark(s.doc_id, s.label.start, s.label.end)}]" for s in asked.studies)
        return (f"{len(asked.studies)} studies: {names}." if english else f"文档中有{len(asked.studies)}项：{names}。")
    return "The studies side by side:" if english else "两项研究对比如下：" if len(labels) == 2 else "各项研究对比如下："


def reason_sentences(document: Document, studies: tuple[Study, ...]) -> list[tuple[int, int]]:
    """Where the document explains how the studies differ: the sentence naming all of them and the
    sentences of its paragraph that go on with it ("这些结果的差异可能源于…")."""
    authors = {s.author for s in studies}
    text, sentences = document.text, document.sentences
    for i, sentence in enumerate(sentences):
        named = {m.author for m in named_mentions(text, sentence.start, sentence.end)}
        if not authors <= named:
            continue
        out = [(sentence.start, sentence.end)]
        for after in sentences[i + 1:]:
            if "\n" in text[out[-1][1]:after.start] or not _GOES_ON.match(text, after.start):
                break
            out.append((after.start, after.end))
        if any(_REASON.search(text, s, e) for s, e in out):
            return out
    return []


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
    """One table row as a line of the answer text, each value with its marker."""
    missing = "not given in the document" if english else "文档未给出"
    parts = []
    for label, cell in zip(labels, row.cells):
        value = " ".join(f"{c.text}[{c.n}]" for c in cell) if cell else missing
        parts.append(f"{label}: {value}" if english else f"{label}：{value}")
    return f"- {row.field}: " + "; ".join(parts) if english else f"- {row.field}：" + "；".join(parts)


def _field_text(asked: StudyQuestion, cites: _Cites, english: bool) -> str:
    """A follow-up answered from the one study's record; a missing field is said to be missing."""
    study = asked.studies[0]
    label = study.label.text
    if asked.kind == "control":
        arms = [a for a in study.arms if re.search(r"对照|安慰剂|control|placebo", a.name.text, re.I)]
        if not arms:
            at = cites.mark(study.doc_id, study.label.start, study.label.end)
            return (f"The document does not give a control group for {label}[{at}]." if english else
                    f"文档未给出{label}[{at}]这项研究的对照组人数。")
        parts = [f"{a.span.text}[{cites.mark(study.doc_id, a.span.start, a.span.end)}]" for a in arms]
        return (f"In {label}: " + "; ".join(parts) + "." if english else f"{label}：" + "，".join(parts) + "。")
    at = cites.mark(study.doc_id, study.label.start, study.label.end)
    lines = []
    for name in _row_fields(asked.fields):
        values = _values(study, name)
        heading = _heading(name, english)
        if values:
            quoted = " ".join(f"{q.text}[{cites.mark(study.doc_id, q.start, q.end)}]" for q in values)
            lines.append(f"{heading}: {quoted}" if english else f"{heading}：{quoted}")
        else:
            lines.append(f"{heading}: not given in the document" if english else f"{heading}：文档未给出")
    return (f"{label}[{at}] — " + "; ".join(lines) + "." if english else f"{label}[{at}]——" + "；".join(lines) + "。")
