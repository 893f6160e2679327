"""The onnxruntime backend: the same vectors as sentence-transformers, and a self-healing export.

Real model, real export (into the normal cache, once per machine, as for users).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import REVIEW

pytestmark = pytest.mark.slow  # loads and exports the real model

QUESTIONS = ["为什么Bang和Chung的研究结论不一致？", "那剂量是多少？", "What dose did Levy use in the MS trial?",
             "MSC-EVs 在阿尔茨海默病模型中有什么作用？", "", "   ", "1×10⁸个细胞 Aβ42 et al."]


def _sentences() -> list[str]:
    from rag.ingest.splitter import split_spans

    text = REVIEW.read_text(encoding="utf-8")
    return [text[start:end] for start, end in split_spans(text)]


@pytest.fixture(scope="module")
def backends(real_settings):
    from rag.indexing.embedder import load_embedder

    onnx = load_embedder(real_settings)
    torch = load_embedder(real_settings.model_copy(update={"embedding_backend": "sentence-transformers"}))
    return onnx, torch


def test_default_backend_is_onnxruntime(backends):
    from rag.indexing.embedder import OnnxEmbedder

    assert isinstance(backends[0], OnnxEmbedder)
    assert backends[0].model_id == backends[1].model_id  # one index serves both


@pytest.mark.parametrize("is_query", [True, False])
def test_onnx_vectors_match_sentence_transformers(backends, is_query):
    onnx, torch = backends
    texts = _sentences() + QUESTIONS + [REVIEW.read_text(encoding="utf-8")[:3000]]  # one text past 512 tokens
    a, b = onnx.encode(texts, is_query=is_query), torch.encode(texts, is_query=is_query)
    assert a.shape == b.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.9999


def test_onnx_vectors_do_not_depend_on_batching(backends):
    from rag.indexing.embedder import OnnxEmbedder

    onnx = backends[0]
    texts = _sentences()[:40]
    one_batch = OnnxEmbedder(onnx.folder, onnx.model_id, "query: ", "passage: ", batch_size=64).encode(texts, False)
    assert float((one_batch * onnx.encode(texts, False)).sum(axis=1).min()) > 0.9999
    assert onnx.encode([], is_query=True).shape == (0, 384)


def test_export_is_redone_when_a_file_is_damaged(backends, real_settings, tmp_path):
    from rag.indexing.embedder import resolve_model
    from rag.indexing.onnx_export import ensure_exported, is_complete

    source = backends[0].folder
    dest = tmp_path / "onnx-copy"
    shutil.copytree(source, dest)
    assert is_complete(dest) and ensure_exported("unused: the copy is complete", dest) == dest
    with open(dest / "tokenizer.json", "ab") as f:  # a size that no longer matches the record
        f.write(b" ")
    assert not is_complete(dest)
    path, _ = resolve_model(real_settings)
    ensure_exported(path, dest)
    assert is_complete(dest)
    record = json.loads((dest / "embedder.json").read_text(encoding="utf-8"))
    assert record["inputs"] == ["input_ids", "attention_mask"] and record["dim"] == 384
    assert not list(tmp_path.glob("*.tmp-*"))  # nothing left behind


def test_unloadable_export_gives_a_model_error(backends, tmp_path):
    from rag.indexing.embedder import OnnxEmbedder
    from rag.errors import ModelError

    dest = tmp_path / "broken"
    shutil.copytree(backends[0].folder, dest)
    (dest / "model.onnx").write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="cannot load the ONNX embedding model"):
        OnnxEmbedder(dest, "m", "query: ", "passage: ")
