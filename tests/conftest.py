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
