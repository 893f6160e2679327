"""The library's errors, in one tree; only the edges (CLI, HTTP) translate them.

    RagError
    ├── ConfigError            a setting is invalid or inconsistent
    ├── CorpusError            the corpus folder is missing, or a file is unreadable or unsupported
    │   ├── UnsupportedType    an upload is not a .txt or .md UTF-8 document
    │   ├── BadName            a document name is not a plain file name inside the corpus folder
    │   ├── DocumentNotFound   no document has that id
    │   └── LastDocument       deleting the only document would leave nothing to answer from
    ├── ModelError             the embedding model cannot be found, converted or loaded
    ├── IndexStoreError        the built index is missing, stale or damaged
    │   └── StoreUnavailable   the Postgres store (RAG_STORE) cannot be reached
    ├── QuestionError          a question is empty, too long or malformed
    ├── StudyNotFound          no study record has that id
    ├── BadFilter              a study filter names no design trait or phase
    └── GenerationError        the configured chat endpoint failed or answered badly
"""


class RagError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(RagError):
    """A setting is invalid or inconsistent."""


class CorpusError(RagError):
    """The corpus folder is missing, or a file is unreadable or unsupported."""


class UnsupportedType(CorpusError):
    """An upload is not a supported document (.txt/.md UTF-8, .pdf, .docx, .html), or not what its name says."""


class BadName(CorpusError):
    """A document name is not a plain file name inside the corpus folder."""


class UnreadableDocument(CorpusError):
    """A PDF, Word or web-page file that gives no text: encrypted, scanned, damaged or too large."""


class DocumentNotFound(CorpusError):
    """No document has that id."""


class DuplicateDocument(CorpusError):
    """An upload whose text is already indexed under another name."""

    def __init__(self, message: str, existing_id: str):
        super().__init__(message)
        self.existing_id = existing_id


class LastDocument(CorpusError):
    """Deleting the only document would leave nothing to answer from."""


class ModelError(RagError):
    """The embedding model cannot be found, converted or loaded."""


class IndexStoreError(RagError):
    """The built index is missing, stale or damaged."""


class StoreUnavailable(IndexStoreError):
    """The Postgres store (``RAG_STORE``) cannot be reached: down, refused, or the connection dropped."""


class QuestionError(RagError):
    """A question is empty, too long or malformed."""


class StudyNotFound(RagError):
    """No study record has that id."""


class BadFilter(RagError):
    """A study filter names no design trait or phase."""


class GenerationError(RagError):
    """The configured chat endpoint failed or answered badly."""


class ServerError(RagError):
    """A running server (``rag ask --server``) could not be reached or refused the request."""
