"""Shared helpers of the benchmark harness: timing statistics, memory, the machine, the questions."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
GOLD = ROOT / "eval" / "gold.jsonl"
LIBRARIES = ("faiss-cpu", "onnxruntime", "bm25s", "jieba", "numpy", "torch", "sentence-transformers", "transformers",
             "fastapi", "uvicorn", "langchain-core", "langchain-community", "langchain-classic",
             "langchain-huggingface", "langchain-text-splitters", "rank-bm25", "matplotlib")
RESULT_MARK = "BENCH-RESULT "


def stats_ms(seconds: list[float]) -> dict:
    """p50, p95, mean and count of a list of durations given in seconds, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    if ms.size == 0:
        return {"n": 0}
    return {"n": int(ms.size), "p50": round(float(np.percentile(ms, 50)), 3),
            "p95": round(float(np.percentile(ms, 95)), 3), "mean": round(float(ms.mean()), 3)}


def timed(fn, items, warmup: int = 2) -> list[float]:
    """Call ``fn(item)`` for each item (after ``warmup`` untimed calls); durations in seconds."""
    for item in list(items)[:warmup]:
        fn(item)
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t)
    return out


def interleaved(fns: dict, items, warmup: int = 2) -> dict[str, list[float]]:
    """Time every function on every item, taking turns item by item (rotating who goes first).

    Measured this way, a burst of other work on the machine slows all contenders alike, so
    their ratios stay meaningful even when the absolute numbers move.
    """
    items = list(items)
    names = list(fns)
    for item in items[:warmup]:
        for name in names:
            fns[name](item)
    out: dict[str, list[float]] = {name: [] for name in names}
    for i, item in enumerate(items):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            t = time.perf_counter()
            fns[name](item)
            out[name].append(time.perf_counter() - t)
    return out


def rss_mb(pid: int | None = None) -> float:
    """Current resident memory of a process (this one by default), MiB."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory (VmHWM, the kernel's high-water mark) of a process, MiB."""
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int | None, field: str) -> float:
    text = Path(f"/proc/{pid or 'self'}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return float(match.group(1)) if match else float("nan")


def questions(limit: int | None = None) -> list[str]:
    """The gold set's single-turn questions (real questions about the review), in file order."""
    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    qs = [r["question"] for r in rows if not r.get("history")]
    return qs[:limit] if limit else qs


def machine() -> dict:
    """What the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    simd = sorted(f for f in (flags.group(1).split() if flags else []) if f in {"avx2", "avx512f", "avx512_vnni", "amx_tile"})
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return {
        "nproc": os.cpu_count(),
        "cpu": model.group(1).strip() if model else platform.processor(),
        "simd": simd,
        "ram_gib": round(total_kb / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "torch_threads": _torch_threads(),
    }


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except Exception:  # the harness still runs without torch for the index-only parts
        return None


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: other work on the machine skews every number."""
    return [round(x, 2) for x in os.getloadavg()]


def subprocess_env(**extra: str) -> dict:
    """Environment for child processes: offline, the repository importable, no stray RAG_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env["HF_HUB_OFFLINE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_worker(name: str, args: dict, timeout: float, log=None) -> dict:
    """Run ``python -m bench worker NAME ARGS`` in a fresh process; its result dict (memory is its own)."""
    cmd = [sys.executable, "-m", "bench", "worker", name, json.dumps(args)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"worker {name} {args} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_MARK):])
    result["worker_wall_s"] = round(wall, 2)
    if log:
        log(f"  worker {name} {args} done in {wall:.1f} s")
    return result


def emit(result: dict) -> None:
    """How a worker hands its result to the parent: one marked JSON line on stdout."""
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(RESULT_MARK + json.dumps(result), flush=True)


class RandomEmbedder:
    """Random unit vectors standing in for the model where only the index is measured (seeded)."""

    def __init__(self, dim: int = 384, seed: int = 0):
        self.dim = dim
        self.model_id = f"random-{dim}"
        self._rng = np.random.default_rng(seed)

    def encode(self, texts: list[str], is_query: bool, progress: bool = False) -> np.ndarray:
        v = self._rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


class MemoryGuard:
    """Samples the resident memory of the processes in ``procs`` (together) twice a second, and kills
    them all past ``max_gb``: the machine is shared, and a benchmark must not take it down."""

    def __init__(self, max_gb: float) -> None:
        self.max_bytes, self.procs, self.peak_mb, self.killed = max_gb * 2**30, [], 0.0, False
        self.killed_at_mb = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            total = 0
            for proc in list(self.procs):
                try:
                    total += psutil.Process(proc.pid).memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)
            if total > self.max_bytes:
                self.killed, self.killed_at_mb = True, round(total / 2**20, 1)
                for proc in self.procs:
                    proc.kill()
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop sampling (the processes are left as they are)."""
        self._stop.set()
