"""The CMRC 2018 suite: a public reading-comprehension set as a document collection.

Every paragraph becomes one document whose text is exactly its context, so gold answer
offsets index into the document; every question is asked of the whole collection. The
paragraphs fall into two fixed halves by a hash of their id: ``fit`` (where anything
tuned on this suite is tuned) and ``held`` (where it is reported without having been seen).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CorpusError
from rag.ingest.splitter import split_spans
from rag.quality.halves import half_of

DEFAULT_PATH = Path("eval/cmrc2018/cmrc2018_trial.json")


@dataclass(frozen=True)
class SpanItem:
    """One question whose answer is a span of one document: ``doc.text[start:start+len(text)]``."""

    id: str
    question: str
    doc_id: str
    answers: tuple[tuple[str, int], ...]  # (text, start) pairs
    half: str  # "fit" or "held"


def doc_name(paragraph_id: str) -> str:
    """The document name of a paragraph: ``"TRIAL_800"`` -> ``"TRIAL_800.txt"``."""
    return f"{paragraph_id}.txt"


def read_squad(path: Path) -> list[dict]:
    """The paragraphs of a SQuAD-layout file; a missing or malformed file is a CorpusError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [p for article in data["data"] for p in article["paragraphs"]]
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path} is not a SQuAD-layout file ({exc})") from None


def load_items(path: Path = DEFAULT_PATH) -> list[SpanItem]:
    """Every question of the file, with its paragraph's document and half.

    Questions with no text (two in the trial split) are left out: the server refuses
    an empty question with 422, so there is no answer to score.
    """
    items = []
    for p in read_squad(path):
        for q in p["qas"]:
            if not q["question"].strip():
                continue
            answers = tuple((a["text"], int(a["answer_start"])) for a in q["answers"])
            items.append(SpanItem(q["id"], q["question"], doc_name(p["id"]), answers, half_of(p["id"])))
    return items


def answering_sentences(path: Path = DEFAULT_PATH) -> Iterator[tuple[SpanItem, str]]:
    """Every question with the sentence of its paragraph (as the corpus splitter cuts it) where its
    first gold answer starts: what a reader of one sentence is given when retrieval and the sentence
    ranker are taken out of the picture. A question whose answer starts outside every sentence is skipped."""
    texts = {doc_name(p["id"]): p["context"] for p in read_squad(path)}
    for item in load_items(path):
        text, (_, start) = texts[item.doc_id], item.answers[0]
        holder = next(((a, b) for a, b in split_spans(text) if a <= start < b), None)
        if holder is not None:
            yield item, text[holder[0]:holder[1]]


def write_corpus(path: Path, folder: Path) -> Path:
    """Write each paragraph of ``path`` as one document in ``folder`` (only files that differ)."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {doc_name(p["id"]): p["context"] for p in read_squad(path)}
    for old in folder.glob("*.txt"):
        if old.name not in wanted:
            old.unlink()  # a stale paragraph would be answered from
    for name, text in wanted.items():
        target = folder / name
        data = text.encode("utf-8")
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
    return folder


def sample(items: list[SpanItem], every: int) -> list[SpanItem]:
    """A fixed sample: every ``every``-th question in file order (the same on every run)."""
    return items[::every]


def suite_settings(settings, path: Path = DEFAULT_PATH):
    """The settings with the suite's own corpus (written from ``path``) and index, in the cache folder."""
    root = settings.cache_dir / "suites" / "cmrc2018"
    corpus = write_corpus(path, root / "corpus")
    return settings.model_copy(update={"corpus_dir": corpus, "index_dir": root / "index"})
