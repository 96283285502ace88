"""Qdrant through qdrant-client: embedded local mode under KB_HOME, or a server/cluster at KB_QDRANT_URL.

Hybrid search runs in the engine: two prefetches (dense, BM25) fused with RRF by the query API, with the
filters applied inside each prefetch so filtering never starves the candidate lists.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

from qdrant_client import QdrantClient, models

from index.sparse import SparseVector
from index.store.base import (
    DENSE,
    FACET_KEYS,
    INTEGER_INDEXES,
    KEYWORD_INDEXES,
    SENTENCES,
    SPARSE,
    IndexBusyError,
    RetrieverWeights,
    ScoredPoint,
    StoredPoint,
    VectorStore,
    filter_terms,
    hit_payload,
    retrievers,
    scrolled_point,
    stored_point,
)
from kb.records import SearchFilters
from kb.settings import Settings

log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", message=".*Local mode is not recommended.*")
warnings.filterwarnings("ignore", message=".*Payload indexes have no effect.*")


def to_filter(filters: SearchFilters | None) -> models.Filter | None:
    matches, year = filter_terms(filters)
    if not matches and year is None:
        return None
    must: list[models.Condition] = [
        models.FieldCondition(key=key, match=models.MatchAny(any=values)) for key, values in matches
    ]
    if year is not None:
        must.append(models.FieldCondition(key="year", range=models.Range(gte=year[0], lte=year[1])))
    return models.Filter(must=must)


class QdrantStore(VectorStore):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.collection
        self.remote = bool(settings.qdrant_url)
        self._sentences: bool | None = None  # whether the collection has the sentence multivector (cached)
        if self.remote:
            self.client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=60)
        else:
            settings.qdrant_path.mkdir(parents=True, exist_ok=True)
            try:
                self.client = QdrantClient(path=str(settings.qdrant_path))
            except RuntimeError as exc:
                if "already accessed" in str(exc):
                    raise IndexBusyError(
                        f"the index at {settings.qdrant_path} is open in another process (is the app running?). "
                        "Add files through the app or its drop folder, stop the app first, or set KB_QDRANT_URL "
                        "to share a Qdrant server."
                    ) from exc
                raise

    # --- collection ----------------------------------------------------------------------------------------
    def ensure_collection(self, dim: int) -> None:
        self._sentences = None
        if self.client.collection_exists(self.name):
            self._create_indexes(missing_only=True)  # a filter field added since the collection was made
            return
        s = self.settings
        self.client.create_collection(
            self.name,
            vectors_config={
                DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE, on_disk=s.on_disk_vectors),
                SENTENCES: models.VectorParams(
                    size=dim,
                    distance=models.Distance.COSINE,
                    on_disk=s.on_disk_vectors,
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                    hnsw_config=models.HnswConfigDiff(m=0),  # exact MaxSim scan: no graph over every sentence
                ),
            },
            sparse_vectors_config={
                SPARSE: models.SparseVectorParams(
                    modifier=models.Modifier.IDF, index=models.SparseIndexParams(on_disk=s.on_disk_vectors)
                )
            },
            shard_number=s.shards if self.remote else None,
            replication_factor=s.replication_factor if self.remote else None,
            on_disk_payload=s.on_disk_vectors if self.remote else None,
        )
        self._create_indexes()

    def _create_indexes(self, missing_only: bool = False) -> None:
        if not self.remote:  # payload indexes are no-ops in local mode (and warn)
            return
        have = set(self.client.get_collection(self.name).payload_schema or {}) if missing_only else set()
        for key in (k for k in KEYWORD_INDEXES if k not in have):
            self.client.create_payload_index(self.name, key, models.PayloadSchemaType.KEYWORD)
        for key in (k for k in INTEGER_INDEXES if k not in have):
            self.client.create_payload_index(self.name, key, models.PayloadSchemaType.INTEGER)

    def _exists(self) -> bool:
        return self.client.collection_exists(self.name)

    @property
    def has_sentences(self) -> bool:
        """Collections created before sentence vectors keep working without them (re-ingest into a new one)."""
        if self._sentences is None and self._exists():
            vectors = self.client.get_collection(self.name).config.params.vectors
            self._sentences = isinstance(vectors, dict) and SENTENCES in vectors
        return bool(self._sentences)

    # --- writing -------------------------------------------------------------------------------------------
    def upsert(self, points: list[StoredPoint]) -> None:
        if not points:
            return
        sentences = self.has_sentences
        structs = []
        for p in points:
            sparse = models.SparseVector(indices=p.sparse.indices, values=p.sparse.values)
            vector: dict = {DENSE: p.dense, SPARSE: sparse}
            if p.sentences and sentences:
                vector[SENTENCES] = p.sentences
            structs.append(models.PointStruct(id=p.id, vector=vector, payload=p.payload))
        self.client.upsert(self.name, structs, wait=True)

    def delete_ids(self, ids: list[str]) -> None:
        if ids and self._exists():
            self.client.delete(self.name, models.PointIdsList(points=list(ids)), wait=True)

    def delete_doc(self, doc_id: str) -> None:
        if self._exists():
            self.client.delete(self.name, models.FilterSelector(filter=to_filter(SearchFilters(doc_ids=[doc_id]))))

    def set_payload(self, ids: list[str], payload: dict) -> None:
        if ids:
            self.client.set_payload(self.name, payload=payload, points=list(ids), wait=True)

    def set_sparse(self, vectors: dict[str, SparseVector]) -> None:
        if vectors:
            points = [
                models.PointVectors(id=i, vector={SPARSE: models.SparseVector(indices=v.indices, values=v.values)})
                for i, v in vectors.items()
            ]
            self.client.update_vectors(self.name, points=points, wait=True)

    # --- reading -------------------------------------------------------------------------------------------
    def point_ids(self, doc_id: str | None = None) -> set[str]:
        filters = SearchFilters(doc_ids=[doc_id]) if doc_id else None
        return {p.id for p in self.scroll(filters, payload=False)}

    def count(self, filters: SearchFilters | None = None) -> int:
        if not self._exists():
            return 0
        return self.client.count(self.name, count_filter=to_filter(filters), exact=True).count

    def _records(self, filters: SearchFilters | None, payload: bool, vectors: list[str] | bool) -> Iterator:
        """Every record matching the filters, page by page (the one scroll loop of this store)."""
        if not self._exists():
            return
        offset = None
        while True:
            batch, offset = self.client.scroll(
                self.name, scroll_filter=to_filter(filters), limit=512, offset=offset, with_payload=payload,
                with_vectors=vectors,
            )  # fmt: skip
            yield from batch
            if offset is None:
                return

    def scroll(
        self, filters: SearchFilters | None = None, with_dense: bool = False, payload: bool = True
    ) -> Iterator[ScoredPoint]:
        for rec in self._records(filters, payload, [DENSE] if with_dense else False):
            vectors = rec.vector if isinstance(rec.vector, dict) else {}
            yield scrolled_point(str(rec.id), rec.payload, vectors, with_dense)

    def stored_points(self, filters: SearchFilters | None = None) -> Iterator[StoredPoint]:
        for rec in self._records(filters, True, True):
            yield stored_point(str(rec.id), rec.vector if isinstance(rec.vector, dict) else {}, rec.payload)

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
        if not self._exists():
            return []
        flt = to_filter(filters)
        sentences = self.has_sentences
        vectors: dict = {DENSE: dense, SENTENCES: [dense]}
        if sparse is not None:
            vectors[SPARSE] = models.SparseVector(indices=sparse.indices, values=sparse.values)
        sources = [(vectors[name], name, weight) for name, weight in retrievers(dense, sparse, weights, sentences)]
        if not sources:
            return []
        wanted = [DENSE, SPARSE, SENTENCES] if sentences else [DENSE, SPARSE]
        if len(sources) == 1:
            query, using, _ = sources[0]
            res = self.client.query_points(self.name, query=query, using=using, query_filter=flt, limit=limit,
                                           with_payload=True, with_vectors=wanted)  # fmt: skip
        else:
            res = self.client.query_points(
                self.name,
                prefetch=[models.Prefetch(query=q, using=u, limit=candidates, filter=flt) for q, u, _ in sources],
                query=models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=[w for _, _, w in sources])),
                query_filter=flt,
                limit=limit,
                with_payload=True,
                with_vectors=wanted,
            )
        return [
            ScoredPoint(
                id=str(p.id),
                score=p.score,
                payload=hit_payload(p.payload, p.vector if isinstance(p.vector, dict) else {}),
            )
            for p in res.points
        ]

    def sparse_scores(self, sparse: SparseVector, ids: list[str]) -> dict[str, float]:
        if not ids or not sparse.indices or not self._exists():
            return {}
        res = self.client.query_points(
            self.name,
            query=models.SparseVector(indices=sparse.indices, values=sparse.values),
            using=SPARSE,
            query_filter=models.Filter(must=[models.HasIdCondition(has_id=list(ids))]),
            limit=len(ids),
            with_payload=False,
        )
        return {str(p.id): p.score for p in res.points}

    def facets(self, filters: SearchFilters | None, keys: tuple[str, ...] = FACET_KEYS) -> dict[str, dict]:
        if not self._exists():
            return {k: {} for k in keys}
        flt = to_filter(filters)
        out: dict[str, dict] = {}
        for key in keys:
            hits = self.client.facet(self.name, key=key, facet_filter=flt, limit=500, exact=True).hits
            out[key] = {h.value: h.count for h in hits}
        return out

    def close(self) -> None:
        self.client.close()
