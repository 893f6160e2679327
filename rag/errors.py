"""The library's errors, in one tree; only the edges (CLI, HTTP) translate them.

    RagError
    ├── ConfigError        a setting is invalid or inconsistent
    ├── CorpusError        the corpus folder is missing, or a file is unreadable or unsupported
    ├── ModelError         the embedding model cannot be found, converted or loaded
    ├── IndexError_        the built index is missing, stale or damaged
    ├── QuestionError      a question is empty, too long or malformed
    └── GenerationError    the configured chat endpoint failed or answered badly
"""


class RagError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(RagError):
    """A setting is invalid or inconsistent."""


class CorpusError(RagError):
    """The corpus folder is missing, or a file is unreadable or unsupported."""


class ModelError(RagError):
    """The embedding model cannot be found, converted or loaded."""


class IndexError_(RagError):
    """The built index is missing, stale or damaged (the underscore avoids the builtin)."""


class QuestionError(RagError):
    """A question is empty, too long or malformed."""


class GenerationError(RagError):
    """The configured chat endpoint failed or answered badly."""
