"""Answer stage: retrieving passages for a question, choosing the sentences and writing the cited answer."""
