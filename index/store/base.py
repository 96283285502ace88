"""What the knowledge base needs from a vector store, and nothing more.

Points carry a dense vector, a BM25 sparse vector, one vector per sentence (a multivector compared by
MaxSim, so a passage is found by its single best-matching sentence) and a flat payload (everything a filter or
a citation needs; ``sentence_spans`` maps each sentence vector back to its characters). Filters arrive as
``SearchFilters`` and each engine translates them into its own query language.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from pydantic import BaseModel, Field

from index.sparse import SparseVector
from kb.records import SearchFilters

DENSE, SPARSE, SENTENCES = "dense", "bm25", "sentences"
FACET_KEYS = ("doc_language", "country", "doc_type", "publisher", "year", "labels", "file", "about")
# Payload fields that get an index where the engine has real payload indexes (server, qdrant-edge).
KEYWORD_INDEXES = ("doc_id", "doc_language", "language", "country", "doc_type", "publisher", "file", "labels", "about")
INTEGER_INDEXES = ("year",)
# SearchFilters field -> payload key it matches (any of the values); the year range is the one range filter.
MATCH_ANY_FIELDS = (
    ("languages", "doc_language"),
    ("countries", "country"),
    ("doc_types", "doc_type"),
    ("publishers", "publisher"),
    ("files", "file"),
    ("doc_ids", "doc_id"),
    ("objectives", "labels"),
    ("about", "about"),
)


def filter_terms(filters: SearchFilters | None) -> tuple[list[tuple[str, list]], tuple[int | None, int | None] | None]:
    """The meaning of a ``SearchFilters``, engine-neutral: every condition must hold (AND).

    Returns ``(matches, year)``: each match is ``(payload key, values)`` and holds when the key has any of the
    values (for list payloads such as ``labels``: when any element does); ``year`` is an inclusive
    ``(from, to)`` range with open ends as ``None``, or ``None`` when the year is not filtered. Each engine
    turns this into its own query language, so the engines cannot drift apart in what a filter means.
    """
    if filters is None or filters.is_empty():
        return [], None
    matches = [(key, list(getattr(filters, name))) for name, key in MATCH_ANY_FIELDS if getattr(filters, name)]
    year = None
    if filters.year_from is not None or filters.year_to is not None:
        year = (filters.year_from, filters.year_to)
    return matches, year


class IndexBusyError(RuntimeError):
    """The embedded index is open in another process (usually the app): only one may hold it."""


class StoredPoint(BaseModel):
    id: str
    dense: list[float]
    sparse: SparseVector
    sentences: list[list[float]] = Field(default_factory=list)  # one per payload["sentence_spans"] entry
    payload: dict


RetrieverWeights = tuple[float, float, float]  # RRF weights of (passage dense, BM25, sentence MaxSim)
DEFAULT_WEIGHTS: RetrieverWeights = (1.0, 1.0, 0.0)


def retrievers(
    dense: list[float] | None, sparse: SparseVector | None, weights: RetrieverWeights | None, sentences: bool = True
) -> list[tuple[str, float]]:
    """The (vector name, RRF weight) of each retriever a query runs: it has its query vector and a weight > 0
    (and, for sentences, the collection stores them). Both engines fuse exactly these."""
    w_dense, w_sparse, w_sentences = weights or DEFAULT_WEIGHTS
    chosen = []
    if dense is not None and w_dense > 0:
        chosen.append((DENSE, w_dense))
    if sparse is not None and sparse.indices and w_sparse > 0:
        chosen.append((SPARSE, w_sparse))
    if dense is not None and w_sentences > 0 and sentences:
        chosen.append((SENTENCES, w_sentences))
    return chosen


def hit_payload(payload: dict | None, vectors: dict) -> dict:
    """A hit's payload plus the vectors search re-scores with: ``_dense``, ``_sentences``, ``_terms`` (BM25 ids)."""
    out = {**(payload or {}), "_dense": vectors.get(DENSE)}
    if vectors.get(SENTENCES):
        out["_sentences"] = vectors[SENTENCES]
    if vectors.get(SPARSE) is not None:
        out["_terms"] = list(vectors[SPARSE].indices)
    return out


def stored_point(point_id: str, vectors: dict, payload: dict | None) -> StoredPoint:
    """A point read back whole from either engine (named vectors as a dict; the sparse one has indices/values)."""
    sparse = vectors.get(SPARSE)
    return StoredPoint(
        id=point_id, dense=vectors.get(DENSE) or [], sentences=vectors.get(SENTENCES) or [],
        sparse=SparseVector(indices=list(sparse.indices), values=list(sparse.values)) if sparse
        else SparseVector(indices=[], values=[]),
        payload=dict(payload or {}),
    )  # fmt: skip


class ScoredPoint(BaseModel):
    id: str
    score: float
    payload: dict


def scrolled_point(point_id: str, payload: dict | None, vectors: dict | None, with_dense: bool) -> ScoredPoint:
    """A scrolled point from either engine: its payload, and its dense vector under ``_dense`` when asked."""
    data = dict(payload or {})
    if with_dense:
        data["_dense"] = (vectors or {}).get(DENSE)
    return ScoredPoint(id=point_id, score=0.0, payload=data)


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
        weights: RetrieverWeights | None = None,
    ) -> list[ScoredPoint]:
        """Passages by meaning (``dense``: the passage vectors and, by MaxSim, the sentence vectors) and by
        words (``sparse``), each retriever under the filters, fused with weighted RRF inside the engine
        (``weights``: dense, sparse, sentences; 0 drops a retriever; default 1, 1, 0).

        Returned payloads carry the passage vector under ``_dense``, the sentence vectors under ``_sentences``
        (absent for points stored without them) and the BM25 term ids under ``_terms``.
        """

    @abstractmethod
    def sparse_scores(self, sparse: SparseVector, ids: list[str]) -> dict[str, float]:
        """BM25 scores (IDF applied by the engine) of these points; points sharing no term are left out."""

    @abstractmethod
    def facets(self, filters: SearchFilters | None, keys: tuple[str, ...] = FACET_KEYS) -> dict[str, dict]:
        """Value → count of points for each payload key, under the filters."""

    @abstractmethod
    def scroll(self, filters: SearchFilters | None = None, with_dense: bool = False) -> Iterator[ScoredPoint]:
        """Every point (payload, and the dense vector under payload['_dense'] when asked)."""

    @abstractmethod
    def stored_points(self, filters: SearchFilters | None = None) -> Iterator[StoredPoint]:
        """Every point whole (vectors and payload), as ``upsert`` takes it: for rewriting vectors in place."""

    @abstractmethod
    def set_payload(self, ids: list[str], payload: dict) -> None:
        """Overwrite some payload keys of these points (re-tagging, metadata edits) without re-embedding."""

    @abstractmethod
    def set_sparse(self, vectors: dict[str, SparseVector]) -> None:
        """Replace the BM25 vector of these points (point id → vector), leaving the dense ones as they are."""

    @abstractmethod
    def close(self) -> None: ...
