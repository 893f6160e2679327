"""Readers' thumbs up or down on answers, kept so the gold set can grow from real use.

Each rating is one JSON line appended to a file (``RAG_FEEDBACK_FILE``); nothing is ever
rewritten, so a crash loses at most the line being written. On the Postgres store the ratings
are rows of its database instead (``rag_feedback``), so that every server behind a load balancer
adds to, and ``rag feedback`` lists, one collection. ``candidate_gold`` turns one into an item in
the gold set's form, for a person to check before it joins ``eval/gold.jsonl``.
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


def new_record(rating: str, question: str, answer: str, citations: list[dict], answerable: bool,
               comment: str = "") -> dict:
    """A rating as stored: with a new id and the time; an unknown rating is a FeedbackError."""
    if rating not in RATINGS:
        raise FeedbackError(f"rating must be one of {', '.join(RATINGS)} (got {rating!r})")
    return {"id": uuid.uuid4().hex[:12], "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rating": rating,
            "comment": comment.strip(), "question": question, "answer": answer, "answerable": answerable,
            "citations": [{k: c.get(k) for k in ("n", "doc_id", "section", "start", "end", "text")} for c in citations]}


def open_feedback(settings) -> FeedbackStore | PgFeedbackStore:
    """Where this server keeps ratings: the Postgres store's database when it uses one, else the file."""
    from rag.indexing.pg.connection import is_postgres

    return PgFeedbackStore(settings.store) if is_postgres(settings.store) else FeedbackStore(settings.feedback_file)


def _one(found: list[dict], feedback_id: str) -> dict:
    """The single rating ``get`` asked for, or a FeedbackError saying why there is none."""
    if len(found) != 1:
        raise FeedbackError(f"no feedback with id {feedback_id!r}" if not found
                            else f"id {feedback_id!r} is ambiguous: {', '.join(r['id'] for r in found)}")
    return found[0]


class FeedbackStore:
    """Append-only JSON-lines file of ratings; safe for the threads of one server."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """Where the ratings are, for messages."""
        return str(self.path)

    def add(self, rating: str, question: str, answer: str, citations: list[dict], answerable: bool,
            comment: str = "") -> dict:
        """Store one rating; returns the stored record with its id and time."""
        record = new_record(rating, question, answer, citations, answerable, comment)
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
        return _one([r for r in self.all() if r.get("id", "").startswith(feedback_id)] if feedback_id else [], feedback_id)


class PgFeedbackStore:
    """Ratings as rows of the Postgres store's ``rag_feedback`` table, shared by every server on it."""

    def __init__(self, url: str):
        self.url = url

    @property
    def where(self) -> str:
        """Where the ratings are, for messages (never the URL: it may hold a password)."""
        return "the Postgres store (table rag_feedback)"

    def add(self, rating: str, question: str, answer: str, citations: list[dict], answerable: bool,
            comment: str = "") -> dict:
        """Store one rating (committed before it returns); returns the stored record."""
        from psycopg.types.json import Jsonb

        record = new_record(rating, question, answer, citations, answerable, comment)
        self._run("store feedback in", "INSERT INTO rag_feedback (id, record) VALUES (%s, %s)", (record["id"], Jsonb(record)))
        return record

    def all(self) -> list[dict]:
        """Every stored rating, oldest first."""
        return [row[0] for row in self._run("read feedback from", "SELECT record FROM rag_feedback ORDER BY at, id", ())]

    def get(self, feedback_id: str) -> dict:
        """The rating with this id (a unique prefix will do)."""
        rows = self._run("read feedback from", "SELECT record FROM rag_feedback WHERE starts_with(id, %s) ORDER BY at, id",
                         (feedback_id,)) if feedback_id else []
        return _one([row[0] for row in rows], feedback_id)

    def _run(self, doing: str, sql: str, params: tuple) -> list[tuple]:
        """Run one statement (the tables made first when missing); a store that is down or refuses
        is a FeedbackError (HTTP 503), and nothing half-written stays."""
        from rag.indexing.pg import schema
        from rag.indexing.pg.connection import connect

        try:
            with connect(self.url) as conn:
                schema.ensure_meta(conn)
                cursor = conn.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        except RagError as exc:
            raise FeedbackError(f"cannot {doing} the Postgres store: {exc}") from None


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
