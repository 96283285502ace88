"""The vector store behind one small interface, so the engine can be swapped (local, server, edge)."""

from __future__ import annotations

from index.store.base import IndexBusyError, ScoredPoint, StoredPoint, VectorStore
from kb.settings import Settings


def open_store(settings: Settings) -> VectorStore:
    """Qdrant server when KB_QDRANT_URL is set, else the embedded engine chosen by KB_STORE_ENGINE."""
    if settings.qdrant_url or settings.store_engine == "qdrant-local":
        from index.store.qdrant import QdrantStore

        return QdrantStore(settings)
    if settings.store_engine == "qdrant-edge":
        from index.store.edge import EdgeStore

        return EdgeStore(settings)
    raise ValueError(f"unknown KB_STORE_ENGINE '{settings.store_engine}' (qdrant-local or qdrant-edge)")


__all__ = ["IndexBusyError", "ScoredPoint", "StoredPoint", "VectorStore", "open_store"]
