"""Index stage: embedding, the vector and BM25 indexes, and building, storing and loading them."""
