"""Ingest stage: reading the corpus, splitting it into sentences and cutting it into chunks."""
