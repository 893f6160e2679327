"""Time whole answers (not only retrieval) on a large synthetic index, in one process, no server.

    python tools/answer_timings.py --build DIR [--chunks 100000]   # once: build and save (minutes)
    python tools/answer_timings.py --index DIR [--profile]         # time the questions

The index is ``bench.pg_scale.base_build``'s synthetic corpus (copies of review-like documents,
random vectors, so only the costs mean anything). Each question is asked twice: the first time
pays for what an index makes once (the study records, the corpus text); the second is the cost
every later question pays. Work that grows with the corpus, not with the question, shows here as
a second time that grows with ``--chunks``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

QUESTIONS = [
    "为什么Bang和Chung的研究结论不一致？",
    "Kim等人的试验纳入了几例患者？",
    "间充质干细胞如何治疗脑卒中？",
    "今天天气怎么样？",
    "What is the capital of France?",
    "MSC的储存温度是多少？",
    "比较Levy和Kim的研究",
    "哪些研究治疗了多发性硬化？",
]


def build(folder: Path, chunks: int) -> None:
    """A synthetic index of about ``chunks`` chunks, published in ``folder``."""
    from bench import pg_scale
    from rag.indexing import lifecycle

    folder.mkdir(parents=True, exist_ok=True)
    built, _ = pg_scale.base_build(chunks, folder)
    lifecycle.publish(built, folder / "index")
    print(f"{len(built.chunks):,} chunks saved in {folder}")


def time_questions(folder: Path, profile: bool) -> None:
    """Ask every question twice and print both times; with ``profile``, where the second asks went."""
    from bench.common import RandomEmbedder
    from rag.answer.answer_models import load_answer_models
    from rag.config import Settings
    from rag.indexing import store
    from rag.pipeline import Pipeline
    from rag.service import Assistant

    settings = Settings(corpus_dir=folder / "corpus", index_dir=folder / "index", embedding_model="random-384")
    index = store.read_build(store.current_build(settings.index_dir))
    assistant = Assistant(Pipeline(settings, index, RandomEmbedder(), load_answer_models()))
    print(f"{len(index.chunks):,} chunks, {len(index.sentences):,} sentences, {len(index.documents):,} documents")
    first = {}
    for q in QUESTIONS:
        t = time.perf_counter()
        assistant.ask(q)
        first[q] = time.perf_counter() - t
    profiler = cProfile.Profile()
    print("| question | first (s) | again (s) |\n|---|---|---|")
    for q in QUESTIONS:
        t = time.perf_counter()
        profiler.enable()
        assistant.ask(q)
        profiler.disable()
        print(f"| {q} | {first[q]:.3f} | {time.perf_counter() - t:.3f} |")
    if profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/answer_timings.py", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--build", type=Path, help="build a synthetic index into this folder")
    where.add_argument("--index", type=Path, help="a folder made by --build")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    ns = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if ns.build:
        build(ns.build, ns.chunks)
    else:
        time_questions(ns.index, ns.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
