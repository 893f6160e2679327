"""Two `rag serve` processes (or one) on one Postgres database of about 1M chunks, under 32 clients.

    python -m bench.pg_two_servers [--servers 2] [--base 5000] [--copies 200] [--clients 32] [--duration 30] [--max-rss-gb 21]

The database is grown as ``bench.pg_scale`` grows it (one synthetic build copied inside Postgres,
random vectors), then re-labelled as a build of the default model (same dimension, 384), so that
real servers load it as they would a real one: each loads the whole view and the real model, and
embeds every question with it. The servers start one after the other (two loads at once would
peak together). ``tools/loadtest.py`` then deals 32 clients to the two servers and checks every
citation against its document's text, read from the server.

The answers quote synthetic text chosen by random vectors, so only the costs mean anything:
requests per second, latency, memory, errors. Both servers are killed if their resident memory
together passes ``--max-rss-gb``. The result goes to ``docs/benchmarks-pg-scale.json``
(``two_servers`` or ``one_server``) and the PG-SCALE section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench import pg_scale
from bench.common import MemoryGuard

ROOT = Path(__file__).resolve().parents[1]


def relabel_as_default_model(url: str) -> None:
    """Make the stored build's fingerprint the default settings' one (the vectors stay random)."""
    from rag.config import Settings
    from rag.indexing.index import fingerprint
    from rag.indexing.pg.connection import connect
    from rag.indexing.pg.store import _BUILD_KEYS

    expected = fingerprint(Settings(), {})
    with connect(url) as conn, conn.transaction():
        conn.execute("UPDATE rag_meta SET value = value || %s::jsonb WHERE key = 'build'",
                     (json.dumps({k: expected[k] for k in _BUILD_KEYS}),))


def start_server(url: str, tmp: Path, name: str, log: Path) -> tuple[subprocess.Popen, str]:
    """One `rag serve` on ``url`` with a corpus and index folder of its own; (process, base URL)."""
    from tests.servers import free_port

    corpus, index = tmp / f"corpus-{name}", tmp / f"index-{name}"
    corpus.mkdir()
    port = free_port()
    env = os.environ | {"RAG_STORE": url, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index),
                        "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def rss_mb(proc: subprocess.Popen) -> float:
    return round(psutil.Process(proc.pid).memory_info().rss / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_two_servers", description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, choices=(1, 2), default=2)
    parser.add_argument("--base", type=int, default=5000, help="chunks of the synthetic build that is copied")
    parser.add_argument("--copies", type=int, default=200, help="copies of it in the database (200: about 1M chunks)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--max-rss-gb", type=float, default=21.0, help="kill both servers past this, together")
    parser.add_argument("--together", action="store_true",
                        help="start the servers at the same time (half the wall time; their loads' peaks add up)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ns = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from rag.indexing.pg import store
    from tests.pg import new_database, remove_server, start_server as start_postgres

    postgres = start_postgres()
    guard = MemoryGuard(ns.max_rss_gb)
    out: dict = {"servers": ns.servers, "clients": ns.clients, "duration_s": ns.duration, "load_average_before": os.getloadavg()[0]}
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            url = new_database(postgres)
            built, _ = pg_scale.base_build(ns.base, tmp)
            store.write_all(url, built)
            out["grow_s"] = pg_scale.grow(url, 1, ns.copies)
            out |= pg_scale.counts(url)
            relabel_as_default_model(url)
            print(json.dumps(out), flush=True)
            started = {}
            for name in "ab"[:ns.servers]:
                started[name] = (time.perf_counter(), *start_server(url, tmp, name, tmp / f"server-{name}.log"))
                guard.procs.append(started[name][1])
                if not ns.together:
                    _wait_ready(name, *started[name], tmp, guard, out)
            if ns.together:
                for name in started:
                    _wait_ready(name, *started[name], tmp, guard, out)
            bases = [base for _, _, base in started.values()]
            out["started_together"] = ns.together
            out["load_average_before_load"] = os.getloadavg()[0]
            args = [sys.executable, str(ROOT / "tools" / "loadtest.py"), "--clients", str(ns.clients),
                    "--duration", str(ns.duration)] + [a for b in bases for a in ("--url", b)]
            run = subprocess.run(args, capture_output=True, text=True, timeout=ns.duration + 900)
            if "{" not in run.stdout:
                raise RuntimeError(f"the load test failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
            out["loadtest"] = json.loads(run.stdout[run.stdout.index("{"):])
            for name, proc in zip("ab", guard.procs):
                out[f"server_{name}"]["rss_after_mb"] = rss_mb(proc)
            out["peak_rss_both_mb"] = round(guard.peak_mb, 1)
            # The machine's own count (without the page cache, which holds the servers' vector files).
            out["machine_used_after_mb"] = round(psutil.virtual_memory().used / 2**20, 1)
            out["killed_for_memory"] = guard.killed
            print(json.dumps(out), flush=True)
            for proc in guard.procs:  # a server still busy with timed-out requests is killed
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    finally:
        guard.stop()
        for proc in guard.procs:
            if proc.poll() is None:
                proc.kill()
        remove_server(postgres)
    data_path = ns.out.with_name(ns.out.stem + "-pg-scale.json")
    result = json.loads(data_path.read_text()) if data_path.exists() else {}
    out["text"] = describe(out)
    result["two_servers" if ns.servers == 2 else "one_server"] = out
    data_path.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    pg_scale.write_section(ns.out, pg_scale.render(result))
    return 0


def _wait_ready(name: str, t: float, proc: subprocess.Popen, base: str, tmp: Path, guard: MemoryGuard, out: dict) -> None:
    """Wait for server ``name`` (started at ``t``) to be ready and record when and at what memory."""
    from tests.servers import wait_until_ready

    try:
        health = wait_until_ready(base, proc, timeout_s=2400)
    except RuntimeError:
        health = []
    if guard.killed or not health or health[-1]["status"] != "ok":
        log = (tmp / f"server-{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"server {name} did not become ready (killed: {guard.killed}):\n{log}")
    out[f"server_{name}"] = {"ready_s": round(time.perf_counter() - t, 1), "rss_mb": rss_mb(proc)}
    print(json.dumps(out), flush=True)


def describe(r: dict) -> str:
    """The paragraph for docs/benchmarks.md."""
    lt, names = r["loadtest"], "ab"[:r.get("servers", 2)]
    servers = "two `rag serve` processes, each" if len(names) == 2 else "one `rag serve` process"
    ready = " and ".join(f"{r['server_' + n]['ready_s']} s" for n in names)
    resident = " and ".join(f"{r['server_' + n]['rss_mb']:,}" for n in names)
    after = (f"**killed by the benchmark's memory guard** when the servers together passed {r['peak_rss_both_mb']:,} MiB "
             f"during the first questions" if r.get("killed_for_memory") else
             f"resident at most {r['peak_rss_both_mb']:,} MiB together during the run")
    return (f"{'Two servers' if len(names) == 2 else 'One server'} on one database under {r['clients']} clients at "
            f"{r['chunks']:,} chunks (`python -m bench.pg_two_servers --servers {len(names)}`): {servers} with "
            f"the whole view and the real model (questions embedded for real; the stored vectors are the synthetic "
            f"ones, so the answers mean nothing and only the costs do), on the same 2-core machine"
            f"{', started together' if r.get('started_together') else ''}: ready after {ready}, resident {resident} MiB when ready, {after}. `tools/loadtest.py` ran for {lt['duration_s']} s: "
            f"{lt['throughput_rps']} requests/s, p50 {lt['p50_ms']:,} ms, p95 {lt['p95_ms']:,} ms, p99 "
            f"{lt['p99_ms']:,} ms, {lt['errors']} errors in {lt['requests']:,} requests (every citation checked against "
            f"its document's text). Load average before the run {r['load_average_before_load']:.1f}.")


if __name__ == "__main__":
    sys.exit(main())
