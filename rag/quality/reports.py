"""Evaluation reports as files: JSON for machines, Markdown for reviews, HTML with a chart per kind."""

from __future__ import annotations

import html
import json
from pathlib import Path

METRICS = ("hit@1", "hit@5", "mrr", "key_facts", "citation_precision", "token_f1",
           "abstention_recall", "abstention_precision", "false_abstention")


def write_reports(folder: Path, summary: dict, results: list[dict], fingerprint: dict, ablations: dict | None = None,
                  metrics=METRICS, title: str = "Gold-set evaluation") -> list[Path]:
    """Write report.json, report.md and report.html into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"fingerprint": fingerprint, "summary": summary, "results": results, "ablations": ablations}
    paths = [folder / "report.json", folder / "report.md", folder / "report.html"]
    paths[0].write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(summary, results, ablations, metrics, title), encoding="utf-8")
    paths[2].write_text(html_page(summary, ablations, metrics, title), encoding="utf-8")
    return paths


def table(rows: dict[str, dict], metrics=METRICS) -> str:
    """A Markdown table, one row per name, one column per metric present."""
    present = [m for m in metrics if any(m in r for r in rows.values())]
    lines = ["| | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
    for name, row in rows.items():
        cells = [f"{row[m]:.3f}" if isinstance(row.get(m), float) else str(row.get(m, "–")) for m in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(summary: dict, results: list[dict], ablations: dict | None, metrics=METRICS,
             title: str = "Gold-set evaluation") -> str:
    """The Markdown report: overall, per kind, latency, misses, and ablations when run."""
    parts = [f"# {title}", "", table({"overall": summary["overall"]} | summary["by_kind"], metrics), ""]
    lat = summary.get("latency_ms", {})
    if lat:
        parts += ["## Latency (ms)", "", "| stage | p50 | p95 | mean |", "|---|---|---|---|"]
        parts += [f"| {s} | {v['p50']} | {v['p95']} | {v['mean']} |" for s, v in lat.items()]
        parts.append("")
    parts += ["## Questions below full marks", ""]
    parts += [f"- `{r['id']}` {what}" for r in results if (what := _shortfall(r))]
    if ablations:
        parts += ["", "## Ablations", "", table(ablations)]
    return "\n".join(parts) + "\n"


def _shortfall(row: dict) -> str | None:
    """What a result row missed, in a few words, or None at full marks."""
    if "answerable" not in row:  # a span-suite row (CMRC): every question is answerable
        if row["abstained"]:
            return "abstained"
        return None if row["ans@1"] else f"ans@1=0 (first citation from {row['first_doc']}), short answer {row['short_answer']!r}"
    if not row["answerable"]:
        return None if row["abstained"] else "answered (should abstain)"
    if row["abstained"]:
        return "abstained"
    if row.get("hit@5", 1) < 1 or row.get("key_facts", 1) < 1:
        return f"hit@5={row['hit@5']:.0f} key_facts={row['key_facts']:.2f}"
    return None


def html_page(summary: dict, ablations: dict | None, metrics=METRICS, title: str = "Gold-set evaluation") -> str:
    """A self-contained HTML page: one bar chart (inline SVG) per kind of question."""
    charts = [_chart("overall", summary["overall"], metrics)] + [_chart(k, v, metrics) for k, v in summary["by_kind"].items()]
    extra = ""
    if ablations:
        extra = "<h2>Ablations</h2>" + "".join(_chart(name, row, metrics) for name, row in ablations.items())
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}figure{display:inline-block;margin:1em}"
        f"figcaption{{font-weight:bold}}</style><h1>{html.escape(title)}</h1>" + "".join(charts) + extra
    )


def _chart(title: str, row: dict, metrics=METRICS) -> str:
    """Horizontal bars for the 0–1 metrics of one row."""
    metrics = [m for m in metrics if isinstance(row.get(m), float)]
    bar_h, width, label_w = 18, 220, 150
    bars = []
    for i, m in enumerate(metrics):
        y = i * (bar_h + 4)
        w = max(0.0, min(1.0, row[m])) * width
        bars.append(
            f"<text x='0' y='{y + 13}' font-size='12'>{html.escape(m)}</text>"
            f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='#4a7bd0'/>"
            f"<text x='{label_w + w + 4:.1f}' y='{y + 13}' font-size='12'>{row[m]:.2f}</text>"
        )
    height = len(metrics) * (bar_h + 4)
    svg = f"<svg width='{label_w + width + 50}' height='{height}' role='img'>{''.join(bars)}</svg>"
    return f"<figure><figcaption>{html.escape(title)} ({row.get('items', '')} items)</figcaption>{svg}</figure>"
