"""Reliability: load with document churn, kill -9 mid-build and mid-upload, disk errors, damage."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from rag.indexing import index as index_mod
from rag.indexing import lifecycle, store
from rag.errors import IndexStoreError
from rag.pipeline import Pipeline
from rag.service import Assistant
from tests.conftest import ROOT, private_corpus
from tests.servers import wait_until_ready

pytestmark = pytest.mark.slow


@pytest.fixture()
def private(real_pipeline, tmp_path):
    """A private corpus copy and an index built from it (vectors reused: no embedding)."""
    return private_corpus(real_pipeline, tmp_path)[0]


def _env(settings, **extra):
    return os.environ | {"RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_INDEX_DIR": str(settings.index_dir), "HF_HUB_OFFLINE": "1"} | extra


def test_load_short_run_with_document_churn_has_no_errors(real_pipeline):
    """CI's short version of tools/loadtest.py: 8 clients, 12 s, documents added and deleted meanwhile."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "loadtest.py"), "--clients", "8", "--duration", "12", "--churn",
         "--index-seed", str(real_pipeline.settings.index_dir)],
        capture_output=True, text=True, timeout=600,
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["errors"] == 0, report
    assert report["requests"] > 8 and report["churn"]["add"] >= 1 and report["churn"]["delete"] >= 1
    assert set(report["by_endpoint"]) == {"ask", "stream", "search", "chat"}


def test_kill_9_during_index_build_leaves_previous_index_usable(private):
    before = store.current_build(private.index_dir)
    (private.corpus_dir / "extra.txt").write_text("".join(f"新文档第{i}句用于重建索引。" for i in range(200)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "index"], env=_env(private),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(private.index_dir.glob(".tmp-build-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # wait until it is writing a build
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Killed before the pointer switched: the previous build is live. Killed just after (the
    # last step is fast, so this can happen): the new build is live and complete. Never a mixture.
    live = store.current_build(private.index_dir)
    loaded = lifecycle.load(private.index_dir)  # verified file by file against the manifest checksums
    assert ("extra.txt" in loaded.documents) == (live != before)
    # the next start is clean: dead temporaries removed, the index rebuilt with the new document
    result = subprocess.run([sys.executable, "-m", "rag.cli", "index"], env=_env(private), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert not list(private.index_dir.glob(".tmp-build-*"))
    assert "extra.txt" in lifecycle.load(private.index_dir).documents


def test_kill_9_during_upload_then_restart_is_consistent(private):
    env = _env(private, RAG_MAX_UPLOAD_BYTES="3000000")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base, server)
        before = store.current_build(private.index_dir)
        # ~300 distinct sentences: a few seconds of embedding, long enough to be killed in
        # the middle, short enough that the restart re-indexes it quickly.
        big = "".join(f"上传的文档第{i}句，讲述编号为{i * 7}的样本。" for i in range(300)).encode()
        with pytest.raises(httpx.HTTPError):
            # the server is killed while it indexes the upload
            with httpx.Client(timeout=60) as c:
                import threading

                threading.Timer(1.0, lambda: server.send_signal(signal.SIGKILL)).start()
                c.post(f"{base}/documents", files={"file": ("big.txt", big, "text/plain")})
    finally:
        server.kill()
        server.wait()
    # the live build is the previous one or a complete new one, and it loads with valid checksums
    live = store.current_build(private.index_dir)
    assert live is not None and (live == before or (live / "manifest.json").exists())
    lifecycle.load(private.index_dir)
    # the next start is clean and consistent with the corpus folder
    restarted = Assistant.open(private)
    assert not list(private.index_dir.glob(".tmp-build-*"))
    on_disk = {p.name for p in private.corpus_dir.iterdir() if p.suffix in (".txt", ".md")}
    assert set(restarted.pipeline.index.documents) == on_disk


def test_full_disk_during_save_keeps_the_live_build(private, real_pipeline, monkeypatch):
    before = store.current_build(private.index_dir)
    built = index_mod.build(private, real_pipeline.embedder, progress=False, reuse=real_pipeline.index)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.np, "save", no_space)
    with pytest.raises(IndexStoreError, match="No space left on device"):
        lifecycle.publish(built, private.index_dir)
    assert store.current_build(private.index_dir) == before
    assert not list(private.index_dir.glob(".tmp-build-*"))
    lifecycle.load(private.index_dir)


def test_unwritable_index_folder_is_a_one_line_cli_error(private, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the index folder should be", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "rag.cli", "index"], env=_env(private, RAG_INDEX_DIR=str(blocker / "index")),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in result.stderr


def test_failed_upload_rebuild_restores_the_corpus(private, real_pipeline, monkeypatch):
    pipeline = Pipeline(private, lifecycle.load(private.index_dir), real_pipeline.embedder, real_pipeline.models)
    assistant = Assistant(pipeline)

    def broken_save(*args, **kwargs):
        raise IndexStoreError("cannot write the index: No space left on device")

    monkeypatch.setattr(lifecycle, "publish", broken_save)
    with pytest.raises(IndexStoreError):
        assistant.add_document("new.txt", "新文档的一句话。".encode())
    assert not (private.corpus_dir / "new.txt").exists()
    assert assistant.pipeline is pipeline  # still serving the old, complete index


def test_start_up_removes_builds_a_killed_process_left(private, real_pipeline):
    root = private.index_dir
    live = store.current_build(root)
    stale = root / "build-20260101-000000-999999-1"  # published once, then superseded
    shutil.copytree(live, stale)
    dead = root / ".tmp-build-20260101-000000-999999-2"  # half-written by a process that is gone
    (dead / "chunks.faiss").parent.mkdir()
    (dead / "chunks.faiss").write_bytes(b"x" * 1000)
    (root / ".CURRENT.999999").write_text("build-x\n", encoding="utf-8")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        writing = root / f".tmp-build-20260101-000000-{sleeper.pid}-3"  # a live process is still writing it
        writing.mkdir()
        lifecycle.ensure_index(private, real_pipeline.embedder, progress=False)
        assert not stale.exists() and not dead.exists() and not (root / ".CURRENT.999999").exists()
        assert writing.exists() and store.current_build(root) == live
    finally:
        sleeper.kill()
