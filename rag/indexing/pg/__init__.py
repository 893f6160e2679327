"""The Postgres store (``RAG_STORE=postgresql://…``): documents, sentences, chunks, pgvector
vectors and jieba terms in one database that any number of ``rag serve`` processes share.

Postgres is the store of record; each server holds a read-only view of it, the same
``rag.indexing.index.Index`` the embedded files give, so answers, citations and spans are
exactly the embedded store's (the answer stage needs corpus-wide BM25 statistics and sentence
vectors, and reads them on every question). A change is one transaction that rewrites the
changed documents' rows and logs their ids under a new generation; every server polls the
generation and splices the changed documents into its view (``rag.indexing.segments.apply``),
so nothing a server holds is needed by another, and a restarted server rebuilds its view from
the database alone.

    connection.py  connecting, and turning driver errors into the library's
    schema.py      the tables (created or migrated on open)
    rows.py        documents <-> rows: writing a change, reading documents into a segment
    store.py       opening, building and changing the store (the lifecycle's Postgres half)
    follower.py    the background poll that keeps a server's view current
"""
