"""Indexing: embeddings, vector store and search over the evidence corpus."""
