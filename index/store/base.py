"""What the knowledge base needs from a vector store, and nothing more.

Points carry a dense vector, a BM25 sparse vector and a flat payload (everything a filter or a citation
needs). Filters arrive as ``SearchFilters`` and each engine translates them into its own query language.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from pydantic import BaseModel

from index.sparse import SparseVector
from kb.records import SearchFilters

DENSE, SPARSE = "dense", "bm25"
FACET_KEYS = ("doc_language", "country", "doc_type", "publisher", "year", "labels", "file")


class IndexBusyError(RuntimeError):
    """The embedded index is open in another process (usually the app): only one may hold it."""


class StoredPoint(BaseModel):
    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict


class ScoredPoint(BaseModel):
    id: str
    score: float
    payload: dict


class VectorStore(ABC):
    @abstractmethod
    def ensure_collection(self, dim: int) -> None:
        """Create the collection if missing (dense cosine + sparse BM25 with IDF)."""

    @abstractmethod
    def upsert(self, points: list[StoredPoint]) -> None:
        """Insert or replace points by id (idempotent: ids are stable)."""

    @abstractmethod
    def delete_ids(self, ids: list[str]) -> None: ...

    @abstractmethod
    def delete_doc(self, doc_id: str) -> None:
        """Remove every point of a document."""

    @abstractmethod
    def point_ids(self, doc_id: str | None = None) -> set[str]:
        """Ids of all points (of one document when given)."""

    @abstractmethod
    def count(self, filters: SearchFilters | None = None) -> int: ...

    @abstractmethod
    def query(
        self,
        dense: list[float] | None,
        sparse: SparseVector | None,
        filters: SearchFilters | None,
        limit: int,
        candidates: int,
        rrf_k: int = 60,
    ) -> list[ScoredPoint]:
        """Dense, sparse, or both fused with reciprocal rank fusion inside the engine."""

    @abstractmethod
    def facets(self, filters: SearchFilters | None, keys: tuple[str, ...] = FACET_KEYS) -> dict[str, dict]:
        """Value → count of points for each payload key, under the filters."""

    @abstractmethod
    def scroll(self, filters: SearchFilters | None = None, with_dense: bool = False) -> Iterator[ScoredPoint]:
        """Every point (payload, and the dense vector under payload['_dense'] when asked)."""

    @abstractmethod
    def set_payload(self, ids: list[str], payload: dict) -> None:
        """Overwrite some payload keys of these points (re-tagging, metadata edits) without re-embedding."""

    @abstractmethod
    def close(self) -> None: ...
