"""Readers' thumbs up or down on answers, kept so the gold set can grow from real use.

Each rating is one JSON line appended to a file (``RAG_FEEDBACK_FILE``); nothing is ever
rewritten, so a crash loses at most the line being written. ``candidate_gold`` turns one into
an item in the gold set's form, for a person to check before it joins ``eval/gold.jsonl``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

from rag.errors import RagError

RATINGS = ("up", "down")


class FeedbackError(RagError):
    """Feedback could not be stored or found."""


class FeedbackStore:
    """Append-only JSON-lines file of ratings; safe for the threads of one server."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def add(self, rating: str, question: str, answer: str, citations: list[dict], answerable: bool,
            comment: str = "") -> dict:
        """Store one rating; returns the stored record with its id and time."""
        if rating not in RATINGS:
            raise FeedbackError(f"rating must be one of {', '.join(RATINGS)} (got {rating!r})")
        record = {"id": uuid.uuid4().hex[:12], "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rating": rating,
                  "comment": comment.strip(), "question": question, "answer": answer, "answerable": answerable,
                  "citations": [{k: c.get(k) for k in ("n", "doc_id", "section", "start", "end", "text")} for c in citations]}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())  # a rating that was acknowledged is on disk
        except OSError as exc:
            raise FeedbackError(f"cannot store feedback in {self.path}: {exc.strerror or exc}") from None
        return record

    def all(self) -> list[dict]:
        """Every stored rating, oldest first (a line cut short by a crash is skipped)."""
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def get(self, feedback_id: str) -> dict:
        """The rating with this id (a unique prefix will do)."""
        found = [r for r in self.all() if r.get("id", "").startswith(feedback_id)] if feedback_id else []
        if len(found) != 1:
            raise FeedbackError(f"no feedback with id {feedback_id!r}" if not found
                                else f"id {feedback_id!r} is ambiguous: {', '.join(r['id'] for r in found)}")
        return found[0]


def candidate_gold(record: dict) -> dict:
    """A gold-set item drafted from a rating, marked for review.

    A thumbs-up answer becomes its expected answer, with its citations' text as evidence; a
    thumbs-down keeps the question and the reader's comment, and the expected answer is left for
    the reviewer to write.
    """
    liked = record["rating"] == "up"
    return {
        "id": f"feedback-{record['id']}",
        "kind": "feedback",
        "question": record["question"],
        "answerable": record["answerable"] if liked else None,
        "answer": record["answer"] if liked else None,
        "key_facts": [],
        "evidence": [c["text"] for c in record.get("citations", [])] if liked else [],
        "review": f"from {record['rating']} feedback {record['at']}" + (f": {record['comment']}" if record["comment"] else ""),
    }
