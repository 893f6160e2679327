"""Readers' ratings on the Postgres store (rag.feedback.PgFeedbackStore), on a real Postgres
(tests/pg.py): what one server stores every other server and `rag feedback` see, in order; ids by
prefix; bad input and a store that is down are clear errors that store nothing. No model."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from rag.config import Settings
from rag.feedback import FeedbackError, FeedbackStore, PgFeedbackStore, open_feedback
from tests.pg import pg_server, pg_url  # noqa: F401, F811 (fixtures)

CITED = [{"n": 1, "doc_id": "a.txt", "section": "引言", "start": 0, "end": 4, "text": "一二三四", "score": 0.9}]


def test_ratings_from_two_servers_are_one_collection(pg_url):
    server_a, server_b = PgFeedbackStore(pg_url), PgFeedbackStore(pg_url)
    up = server_a.add("up", "Levy纳入几例？", "9例——…[1]", CITED, True)
    down = server_b.add("down", "Bang纳入几例？", "…", [], True, comment=" 引用错了 ")
    for store in (server_a, server_b, PgFeedbackStore(pg_url)):
        assert store.all() == [up, down]
    assert up["citations"] == [{k: v for k, v in CITED[0].items() if k != "score"}] and down["comment"] == "引用错了"
    assert server_b.get(up["id"][:5]) == up
    with pytest.raises(FeedbackError, match="no feedback with id 'zzz'"):
        server_a.get("zzz")
    with pytest.raises(FeedbackError, match="no feedback"):
        server_a.get("")
    with pytest.raises(FeedbackError, match="ambiguous"):
        _ambiguous(server_a)


def _ambiguous(store: PgFeedbackStore) -> None:
    """Ratings whose ids share a first character until two do, then ``get`` of that character."""
    seen: dict[str, str] = {r["id"][0]: r["id"] for r in store.all()}
    while True:
        record = store.add("up", "q", "a", [], True)
        if record["id"][0] in seen:
            store.get(record["id"][0])
            return
        seen[record["id"][0]] = record["id"]


def test_a_bad_rating_or_a_store_that_is_down_stores_nothing(pg_url):
    store = PgFeedbackStore(pg_url)
    with pytest.raises(FeedbackError, match="rating must be one of up, down"):
        store.add("meh", "q", "a", [], True)
    assert store.all() == []
    down = PgFeedbackStore("postgresql://rag:secret@127.0.0.1:1/nowhere")
    with pytest.raises(FeedbackError, match="cannot store feedback in the Postgres store") as caught:
        down.add("up", "q", "a", [], True)
    assert "secret" not in str(caught.value)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM rag_feedback").fetchone()[0] == 0


def test_the_postgres_store_keeps_ratings_and_the_cli_lists_them(pg_url, tmp_path):
    settings = Settings(store=pg_url, feedback_file=tmp_path / "feedback.jsonl")
    assert isinstance(open_feedback(settings), PgFeedbackStore)
    assert isinstance(open_feedback(Settings(feedback_file=tmp_path / "f.jsonl")), FeedbackStore)
    record = open_feedback(settings).add("down", "Kim随访多久？", "…", [], True, comment="没有回答")
    env = {"RAG_STORE": pg_url, "RAG_FEEDBACK_FILE": str(settings.feedback_file), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "rag.cli", "feedback"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert record["id"] in listed.stdout and "没有回答" in listed.stdout
    assert not settings.feedback_file.exists()  # nothing kept by this machine alone
