"""Shared fixtures: the real model, the real index and the real pipeline, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
REVIEW = CORPUS / "msc-neuro-review.zh.txt"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory):
    """Settings for the real default model over the real corpus, with a private index folder.

    The converted model lives in the normal cache folder, so it is converted at most once
    per machine, as it is for users.
    """
    from rag.config import Settings

    return Settings(corpus_dir=CORPUS, index_dir=tmp_path_factory.mktemp("index"))


@pytest.fixture(scope="session")
def real_pipeline(real_settings):
    """The assembled pipeline: converted e5 model, FAISS + BM25 index built from the review."""
    from rag.pipeline import Pipeline

    return Pipeline.open(real_settings, progress=False)


def private_corpus(real_pipeline, root: Path, extra_files: dict[str, str] | None = None, **updates):
    """Settings over a private copy of the corpus (plus ``extra_files``), with its index built and saved.

    Vectors of the review are reused from the session index, so only extra text is embedded.
    Returns (settings, built index).
    """
    import shutil

    from rag.indexing import index as index_mod
    from rag.indexing import lifecycle

    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    for name, text in (extra_files or {}).items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text, encoding="utf-8")
    settings = real_pipeline.settings.model_copy(update={"corpus_dir": corpus, "index_dir": root / "index", **updates})
    built = index_mod.build(settings, real_pipeline.embedder, progress=False, reuse=real_pipeline.index)
    lifecycle.publish(built, settings.index_dir)
    return settings, built
