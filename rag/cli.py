"""The `rag` command: build the index, ask questions, find sources for claims.

Errors become one line on stderr and a non-zero exit code; tracebacks only with RAG_DEBUG=1.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag.config import MAX_TOP_K, Settings, load_settings
from rag.answer.validation import check_question
from rag.errors import RagError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Cited answers over Chinese documents.")

EXIT_ERROR = 1
EXIT_CHECK_FAILED = 3

TopK = Annotated[Optional[int], typer.Option("--top-k", min=1, max=MAX_TOP_K, help="How many passages to retrieve.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the machine form (JSON).")]
Docs = Annotated[Optional[list[str]], typer.Option(
    "--doc", help="Answer only from this document (its file name); repeat for several.")]
YearFrom = Annotated[Optional[int], typer.Option("--year-from", min=1000, max=2999, help="Only documents of this year or later.")]
YearTo = Annotated[Optional[int], typer.Option("--year-to", min=1000, max=2999, help="Only documents of this year or earlier.")]
Tags = Annotated[Optional[list[str]], typer.Option("--tag", help="Only documents with this tag; repeat for several.")]
Server = Annotated[Optional[str], typer.Option(
    "--server", help="Ask this running server (e.g. http://127.0.0.1:8000) instead of loading the model; "
                     "default RAG_SERVER_URL.")]


def _settings(**overrides) -> Settings:
    return load_settings(**overrides)


def _pipeline_for(text: str, server: str | None = None):
    """What answers: a running server when one is given (flag or ``RAG_SERVER_URL``), else the
    pipeline, opened only once ``text`` has passed the question checks (bad input fails fast)."""
    settings = _settings()
    check_question(text, settings)  # before loading anything heavy or asking anyone
    if server or settings.server_url:
        from rag.client import RemoteAssistant

        return RemoteAssistant(server or settings.server_url, settings.api_key)
    from rag.pipeline import Pipeline
    from rag.service import Assistant

    return Assistant(Pipeline.open(settings))


def _echo_json(value) -> None:
    """Print the machine form: indented JSON, Chinese as it is."""
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _show(as_json: bool, machine, lines: list[str]) -> None:
    """Print ``machine`` as JSON with --json, else the human ``lines``."""
    if as_json:
        _echo_json(machine)
        return
    for line in lines:
        typer.echo(line)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    logging.getLogger("rag.progress").setLevel(logging.INFO)  # long index work says how far it is


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
) -> None:
    _setup_logging(verbose)


@app.command("index")
def index_cmd(
    corpus: Annotated[Optional[Path], typer.Option(help="Corpus folder (default: corpus/).")] = None,
    index_dir: Annotated[Optional[Path], typer.Option("--index-dir", help="Index folder (default: index/).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the index is fresh.")] = False,
) -> None:
    """Build the index (or rebuild it when the corpus, model or settings changed)."""
    from rag.indexing import lifecycle
    from rag.indexing.embedder import load_embedder

    settings = _settings(corpus_dir=corpus, index_dir=index_dir)
    reasons = lifecycle.rebuild_reasons(settings)  # a bad corpus fails here, before the slow model load
    lifecycle.clean_start(settings.index_dir)
    if not reasons and not force:
        typer.echo(f"index is up to date: {'the Postgres store (RAG_STORE)' if settings.store else settings.index_dir}",
                   err=True)
        return
    typer.echo(f"building index ({'; '.join(reasons) or 'forced'}) ...", err=True)
    built = lifecycle.rebuild(settings, load_embedder(settings), progress=True, force=force)
    path = built.path
    counts = built.manifest["counts"]
    timings = built.manifest["build_timings_s"]
    typer.echo(
        f"indexed {counts['documents']} documents, {counts['sentences']} sentences, {counts['chunks']} chunks "
        f"in {sum(timings.values()):.1f} s -> {path or 'the Postgres store (RAG_STORE)'}",
        err=True,
    )


Question = Annotated[str, typer.Argument(help="The question, in Chinese or English.")]
Claim = Annotated[str, typer.Argument(help="A claim or phrase whose source you need.")]


@app.command()
def ask(question: Question, as_json: AsJson = False, top_k: TopK = None, doc: Docs = None, year_from: YearFrom = None,
        year_to: YearTo = None, tag: Tags = None, server: Server = None) -> None:
    """Answer a question with sentences of the corpus, each cited."""
    answer = _pipeline_for(question, server).ask(question, top_k=top_k, documents=doc,
                                                 filters=_filters(year_from, year_to, tag))
    _show(as_json, answer.model_dump(exclude_none=True), _answer_lines(answer))


@app.command()
def search(claim: Claim, as_json: AsJson = False, top_k: TopK = None, doc: Docs = None, year_from: YearFrom = None,
           year_to: YearTo = None, tag: Tags = None, server: Server = None) -> None:
    """Find the passages a claim rests on, with section and character span."""
    passages = _pipeline_for(claim, server).search(claim, top_k=top_k, documents=doc,
                                                   filters=_filters(year_from, year_to, tag))
    _show(as_json, [p.model_dump() for p in passages], _passage_lines(passages))


def _filters(year_from: int | None, year_to: int | None, tags: list[str] | None) -> dict | None:
    """The metadata filters given on the command line (None when none)."""
    if year_from is None and year_to is None and not tags:
        return None
    return {"year_from": year_from, "year_to": year_to, "tags": tags or []}


def _answer_lines(answer) -> list[str]:
    """The human form of an answer: its text, then each source with its place in the document."""
    sources = [f"\n[{c.n}] {c.doc_id} · {c.section or '(开头)'}{_page(c)} · 字符 {c.start}–{c.end}\n    {c.text}"
               for c in answer.citations]
    return [answer.answer, *sources]


def _passage_lines(passages) -> list[str]:
    """The human form of ranked passages: rank, place, score and the exact text."""
    return [f"{p.rank}. {p.doc_id} · {p.section or '(开头)'}{_page(p)} · 字符 {p.start}–{p.end} · score {p.score:.4f}\n"
            f"   {p.text}\n" for p in passages]


def _page(span) -> str:
    """`` · 第3页`` (or ``第3–4页``) for a span of a PDF; nothing for unpaged documents."""
    if not span.page:
        return ""
    return f" · 第{span.page}–{span.page_end}页" if span.page_end else f" · 第{span.page}页"


@app.command()
def add(
    files: Annotated[list[Path], typer.Argument(help="Documents to add: .txt, .md, .pdf, .docx, .html, .epub.")],
    metadata: Annotated[Optional[str], typer.Option(
        "--metadata", help='Bibliographic fields as JSON, for every file given: \'{"year": 2025, "tags": ["stroke"]}\'.')] = None,
    server: Server = None,
) -> None:
    """Add documents to the corpus and index them (a document of the same name is replaced)."""
    fields = _metadata_fields(metadata)
    for path in files:
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}")
    if server or _settings().server_url:
        from rag.client import RemoteAssistant

        remote = RemoteAssistant(server or _settings().server_url, _settings().api_key)
        added = [remote.add(path.name, path.read_bytes(), fields) for path in files]
    else:
        from rag.service import Assistant

        assistant = Assistant.open(_settings())
        added = [assistant.add_document(path.name, path.read_bytes(), fields) for path in files]
    for info in added:
        typer.echo(f"added {info['id']}: {info['chars']} characters, {info['chunks']} chunks"
                   + (f", {info['pages']} pages" if info.get("pages") else ""), err=True)


def _metadata_fields(raw: str | None) -> dict | None:
    """``--metadata`` as checked fields (a bad one is a usage error naming the field)."""
    if not raw:
        return None
    from pydantic import ValidationError

    from rag.ingest.metadata import Metadata

    try:
        data = json.loads(raw)
        Metadata(**data)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(f"--metadata is not a JSON object of fields: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise typer.BadParameter(f"--metadata: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return data


@app.command()
def feedback(
    feedback_id: Annotated[Optional[str], typer.Argument(help="One rating's id (or a unique prefix) to show.")] = None,
    to_gold: Annotated[Optional[Path], typer.Option(
        "--to-gold", help="Append the chosen rating as a candidate gold item to this JSONL file, for review.")] = None,
    as_json: AsJson = False,
) -> None:
    """List readers' thumbs up/down (RAG_FEEDBACK_FILE, or the Postgres store's), or turn one into a candidate gold item."""
    from rag.feedback import candidate_gold, open_feedback

    store = open_feedback(_settings())
    if feedback_id is None:
        if to_gold is not None:
            raise typer.BadParameter("--to-gold needs the id of the rating to draft from")
        records = store.all()
        _show(as_json, records, [f"{r['id']}  {'👍' if r['rating'] == 'up' else '👎'}  {r['at']}  {r['question']}"
                                 + (f"\n    “{r['comment']}”" if r["comment"] else "") for r in records]
              or [f"no feedback yet in {store.where}"])
        return
    record = store.get(feedback_id)
    if to_gold is None:
        _echo_json(record)
        return
    item = candidate_gold(record)
    to_gold.parent.mkdir(parents=True, exist_ok=True)
    with to_gold.open("a", encoding="utf-8") as f:
        f.write(json.dumps(item, ensure_ascii=False) + "\n")
    typer.echo(f"added {item['id']} to {to_gold}: review it (answer, key_facts) before moving it into eval/gold.jsonl",
               err=True)


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="Port (default 8000).")] = None,
) -> None:
    """Start the HTTP API and chat page; it listens at once while the model and index load."""
    import uvicorn

    from api.app import create_app
    from rag.malloc import limit_arenas
    from rag.pipeline import check_corpus_folder

    settings = _settings(host=host, port=port)
    if settings.store:  # a malformed RAG_STORE fails here (an unreachable one is retried once listening)
        from rag.indexing.pg.store import url_of

        url_of(settings)
    check_corpus_folder(settings)  # a missing or bad corpus fails here; the slow part runs once listening
    limit_arenas()  # before the request threads start
    logging.getLogger("api").setLevel(logging.INFO)
    if not logging.getLogger("api").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("api").addHandler(handler)
        logging.getLogger("api").propagate = False
    url = f"http://{settings.host}:{settings.port}/"
    typer.echo(f"listening: open {url} in a browser; API docs at {url}docs "
               f"(loading the model and index first: {url}health shows how far)", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


SUITES = ("review", "cmrc")
Suite = Annotated[str, typer.Option(help="Which gold set: review (the MSC review) or cmrc (CMRC 2018 trial split).")]


@app.command("eval")
def eval_cmd(
    suite: Suite = "review",
    gold: Annotated[Optional[Path], typer.Option(help="The gold set (default: the suite's own).")] = None,
    reports: Annotated[Optional[Path], typer.Option(help="Folder for report.json / .md / .html (default: eval/reports/<suite>).")] = None,
    baseline: Annotated[Optional[Path], typer.Option(help="The stored baseline (default: the suite's own).")] = None,
    sample: Annotated[Optional[int], typer.Option(min=1, help="cmrc only: every n-th question (the fixed sample CI runs).")] = None,
    save_baseline: Annotated[bool, typer.Option("--save-baseline", help="Store this run as the baseline.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Fail when quality falls below the baseline.")] = False,
    ablate: Annotated[bool, typer.Option("--ablate", help="review only: also score BM25-only, dense-only, no expansion and plain LangChain.")] = False,
) -> None:
    """Score the pipeline on a gold set; write reports; save or check the baseline."""
    from rag.quality import gate
    from rag.quality.reports import table, write_reports
    from rag.quality.suites import run_suite

    if suite not in SUITES:
        raise typer.BadParameter(f"unknown suite {suite!r}; choose one of: {', '.join(SUITES)}", param_hint="--suite")
    run = run_suite(suite, _settings(), gold=gold, sample=sample, ablate=ablate)
    paths = write_reports(reports or Path("eval/reports") / suite, run.summary, run.results, run.fingerprint, run.ablations,
                          metrics=run.metrics, title=run.title)
    typer.echo(table({"overall": run.summary["overall"]} | run.summary["by_kind"], run.metrics))
    if run.ablations:
        typer.echo("\n" + table(run.ablations))
    typer.echo(f"\nreports: {', '.join(str(p) for p in paths)}", err=True)
    baseline = baseline or run.baseline_path
    if save_baseline:
        gate.save_baseline(baseline, run.summary, run.results, run.fingerprint)
        typer.echo(f"baseline saved: {baseline}", err=True)
    if check:
        if not baseline.is_file():
            raise RagError(f"no baseline at {baseline}: run `rag eval --suite {suite} --save-baseline` first")
        verdict = gate.compare(gate.load_baseline(baseline), run.summary, run.results, run.fingerprint, run.gate_spec)
        for line in verdict.fingerprint_changes:
            typer.echo(f"fingerprint changed: {line}", err=True)
        for line in verdict.worse:
            typer.echo(f"worse:  {line}", err=True)
        for line in verdict.better:
            typer.echo(f"better: {line}", err=True)
        for line in verdict.failures:
            typer.echo(f"REGRESSION: {line}", err=True)
        if not verdict.passed:
            why = "quality regressed" if verdict.failures else "the fingerprint changed (re-baseline deliberately)"
            typer.echo(f"check failed: {why}", err=True)
            raise typer.Exit(EXIT_CHECK_FAILED)
        typer.echo("check passed: no metric fell beyond its tolerance", err=True)


@app.command("studies")
def studies_cmd(
    study_id: Annotated[Optional[str], typer.Argument(help="One study's id (e.g. bang-2005); all when omitted.")] = None,
    disease: Annotated[Optional[str], typer.Option(help="Only studies whose disease names this, e.g. 阿尔茨海默病.")] = None,
    design: Annotated[Optional[str], typer.Option(help="Only studies stating this design: randomised, controlled, "
                                                       "blinded, open-label, single-arm (or 随机…), or a phase (II期).")] = None,
    year: Annotated[Optional[int], typer.Option(min=1900, max=2100, help="Only studies of this year.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table (default), json, csv or markdown.")] = "table",
    lang: Annotated[str, typer.Option(help="Column headings: zh or en.")] = "zh",
) -> None:
    """The studies the corpus describes, each field quoted with its span (reads the corpus; no model)."""
    from rag.indexing.index import structure_rules
    from rag.ingest.corpus import load_corpus
    from rag.studies import catalogue, export

    if fmt not in ("table", "json", "csv", "markdown"):
        raise typer.BadParameter(f"unknown format {fmt!r}; choose table, json, csv or markdown", param_hint="--format")
    if lang not in ("zh", "en"):
        raise typer.BadParameter(f"unknown language {lang!r}; choose zh or en", param_hint="--lang")
    settings = _settings()
    studies = catalogue.studies_of(load_corpus(settings.corpus_dir, structure_rules(settings)))
    studies = [catalogue.find(studies, study_id)] if study_id else catalogue.matching(studies, disease, design, year)
    if fmt == "json":
        _echo_json(export.to_json(studies))
    elif fmt == "csv":
        typer.echo(export.to_csv(studies, lang), nl=False)
    elif fmt == "markdown":
        typer.echo(export.to_markdown(studies, lang), nl=False)
    else:
        for s in studies:
            typer.echo(f"{s.id}  {s.label.text}  ·  {s.disease.text if s.disease else '—'}")


@app.command("fit")
def fit_cmd(
    out: Annotated[Optional[Path], typer.Option(help="Folder for the fitted models (default: the packaged rag/data).")] = None,
    only_rule: Annotated[bool, typer.Option("--only-rule", help="Refit only the abstention rule, on the packaged ranker and chooser.")] = False,
    only_chooser: Annotated[bool, typer.Option("--only-chooser", help="Refit only the short-answer chooser, on the packaged ranker.")] = False,
) -> None:
    """Refit the sentence ranker, the short-answer chooser and the abstention rule on the fit halves."""
    from rag.quality.fit import fit_all

    if only_rule and only_chooser:
        raise typer.BadParameter("--only-rule and --only-chooser exclude each other")
    _echo_json(fit_all(_settings(), out, only_rule=only_rule, only_chooser=only_chooser))


def main() -> None:
    """Entry point: run the app, turning library errors into one line and an exit code."""
    try:
        app()  # standalone: usage errors print their message and exit with code 2
    except RagError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # anything unexpected still gets one line, not a traceback
        if os.environ.get("RAG_DEBUG"):
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc} (set RAG_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
