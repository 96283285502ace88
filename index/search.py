"""Hybrid, cross-lingual, filtered retrieval that returns citable hits.

Dense (e5, query prefix) and BM25 candidates are fused with RRF inside Qdrant under the filters; the fused
list is re-scored (``rerank``), near-duplicates collapse onto the best copy, and each hit's page is the page of
its best-matching sentence, not the chunk's first page.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from index.embedder import Embedder
from index.sentences import SentenceVectors, spans_of
from index.sparse import SparseEncoder
from index.store import ScoredPoint, VectorStore
from index.text import compact, overlap, shared_text, terms
from ingest.language import detect
from kb.records import Hit, SearchFilters
from kb.settings import Settings

MODES = ("hybrid", "dense", "sparse")
FACET_FIELDS = {"language": "doc_language", "country": "country", "doc_type": "doc_type",
                "publisher": "publisher", "year": "year", "objective": "labels"}  # fmt: skip
SNIPPET_CHARS = 420


class SearchResult(BaseModel):
    query: str
    query_language: str = ""
    hits: list[Hit] = Field(default_factory=list)
    facets: dict[str, dict[str, int]] = Field(default_factory=dict)
    candidates: int = 0

    def as_json(self) -> dict:
        return {
            "query": self.query,
            "hits": [
                h.model_dump(
                    include={
                        "doc_id",
                        "file",
                        "title",
                        "publisher",
                        "year",
                        "country",
                        "doc_type",
                        "page",
                        "pages",
                        "score",
                        "language",
                        "text",
                        "snippet",
                        "labels",
                        "chunk_id",
                    }
                )
                for h in self.hits
            ],
            "facets": self.facets,
        }


@dataclass
class QueryVectors:
    text: str
    language: str
    dense: list[float]
    terms: set[str]


class Searcher:
    def __init__(self, settings: Settings, store: VectorStore, embedder: Embedder, sparse: SparseEncoder) -> None:
        self.settings, self.store, self.embedder, self.sparse = settings, store, embedder, sparse
        self.sentences = SentenceVectors(embedder, settings.sentence_cache)

    def prepare(self, query: str) -> QueryVectors:
        lang, _ = detect(query)
        dense = self.embedder.encode_queries([query])[0].tolist()
        return QueryVectors(query, lang, dense, terms(query, lang or "en"))

    def candidates(self, q: QueryVectors, filters: SearchFilters | None, mode: str, limit: int) -> list[ScoredPoint]:
        s = self.settings
        dense = q.dense if mode in ("hybrid", "dense") else None
        sparse = self.sparse.encode_query(q.text, q.language) if mode in ("hybrid", "sparse") else None
        return self.store.query(dense, sparse, filters, limit=limit, candidates=s.candidates, rrf_k=s.rrf_k)

    def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        k: int | None = None,
        mode: str = "hybrid",
        rerank: bool | None = None,
    ) -> SearchResult:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        s = self.settings
        k = k or s.top_k
        rerank = s.rerank if rerank is None else rerank
        query = query.strip()
        if not query:
            return SearchResult(query=query)
        q = self.prepare(query)
        points = self.candidates(q, filters, mode, limit=s.candidates)
        if rerank and points:
            points = self.rerank(q, points)
        points = self.collapse(points)
        hits = self.to_hits(q, points[:k])
        return SearchResult(
            query=query, query_language=q.language, hits=hits, facets=self.facets(points), candidates=len(points)
        )

    # --- scoring -------------------------------------------------------------------------------------------
    def rerank(self, q: QueryVectors, points: list[ScoredPoint]) -> list[ScoredPoint]:
        """Blend fused rank with exact dense similarity and query-term coverage of each candidate."""
        s = self.settings
        texts = [p.payload.get("text", "") for p in points]
        vecs = self._vectors(points)
        dense_sim = vecs @ np.asarray(q.dense, dtype=np.float32) if vecs is not None else np.zeros(len(points))
        cover = np.array(
            [overlap(q.terms, t, p.payload.get("language", "en")) for t, p in zip(texts, points, strict=True)]
        )
        rrf = np.array([1.0 / (s.rrf_k + i + 1) for i in range(len(points))])
        score = (
            s.rerank_rrf_weight * rrf / rrf.max()
            + s.rerank_dense_weight * _minmax(dense_sim)
            + s.rerank_lexical_weight * cover
        )
        order = np.argsort(-score, kind="stable")
        return [points[i].model_copy(update={"score": float(score[i])}) for i in order]

    def _vectors(self, points: list[ScoredPoint]) -> np.ndarray | None:
        vecs = [p.payload.get("_dense") for p in points]
        if any(v is None for v in vecs):
            texts = [p.payload.get("text", "") for p in points]
            return self.embedder.encode_passages(texts) if texts else None
        return np.asarray(vecs, dtype=np.float32)

    def collapse(self, points: list[ScoredPoint]) -> list[ScoredPoint]:
        """Keep the best of near-identical passages (the same text in two documents, overlapping chunks)."""
        kept: list[ScoredPoint] = []
        for p in points:
            text = p.payload.get("text", "")
            if len(re.findall(r"\w+", text)) >= 12 and any(
                shared_text(text, k.payload.get("text", "")) >= self.settings.dedup_threshold for k in kept
            ):
                continue
            kept.append(p)
        return kept

    # --- hits ----------------------------------------------------------------------------------------------
    def to_hits(self, q: QueryVectors, points: list[ScoredPoint]) -> list[Hit]:
        """Citable hits; passages that share no word with the query get their best sentence by meaning."""
        lexical = [self.lexical_sentences(q, p) for p in points]
        dense_needed = [i for i, spans in enumerate(lexical) if spans is None][: self.settings.sentence_hits]
        vectors = self.sentences.get([(points[i].id, points[i].payload.get("text", "")) for i in dense_needed])
        query = np.asarray(q.dense, dtype=np.float32)
        for i, (spans, vecs) in zip(dense_needed, vectors, strict=True):
            scores = vecs @ query
            good = scores >= scores.max() - 0.02  # a second sentence must be nearly as close in meaning
            lexical[i] = [spans[j] for j in np.argsort(-scores, kind="stable") if good[j]][:2]
        return [self.to_hit(p, spans or []) for p, spans in zip(points, lexical, strict=True)]

    def lexical_sentences(self, q: QueryVectors, p: ScoredPoint, n: int = 2) -> list[tuple[int, int]] | None:
        """The sentences sharing most query terms, best first; None when the match must be found by meaning."""
        text, lang = p.payload.get("text", ""), p.payload.get("language", "")
        spans = spans_of(text)
        scores = np.array([overlap(q.terms, text[a:b], lang) for a, b in spans])
        if scores.max() <= 0 or (q.language and q.language != lang):
            return None
        scores += 1e-3 * np.arange(len(spans))[::-1] / len(spans)  # ties: the earlier sentence
        good = scores >= max(scores.max() * 0.5, 1e-2)  # others must share at least half as many query terms
        return [spans[i] for i in np.argsort(-scores, kind="stable") if good[i]][:n]

    def to_hit(self, p: ScoredPoint, spans: list[tuple[int, int]]) -> Hit:
        pl = p.payload
        text = pl.get("text", "")
        page = _page_at(pl, spans[0][0]) if spans else pl.get("page_start", 1)  # the best sentence's page
        return Hit(
            chunk_id=pl.get("chunk_id", p.id), doc_id=pl.get("doc_id", ""), file=pl.get("file", ""),
            title=pl.get("title", ""), publisher=pl.get("publisher", ""), year=pl.get("year"),
            country=pl.get("country", ""), doc_type=pl.get("doc_type", ""), language=pl.get("language", ""),
            page=page, pages=(pl.get("page_start", page), pl.get("page_end", page)), score=round(p.score, 5),
            text=text, snippet=make_snippet(text, sorted(spans)), labels=pl.get("label_scores", {}) or {},
            page_offsets=[tuple(x) for x in pl.get("page_offsets") or []],
        )  # fmt: skip

    @staticmethod
    def facets(points: list[ScoredPoint]) -> dict[str, dict[str, int]]:
        """Documents per facet value among the query's candidates (what the sidebar counts)."""
        docs: dict[str, dict[str, set[str]]] = {name: defaultdict(set) for name in FACET_FIELDS}
        for p in points:
            for name, key in FACET_FIELDS.items():
                values = p.payload.get(key)
                for v in values if isinstance(values, list) else [values]:
                    if v not in (None, ""):
                        docs[name][str(v)].add(p.payload.get("doc_id", ""))
        return {name: dict(sorted(((v, len(d)) for v, d in vals.items()), key=lambda x: -x[1]))
                for name, vals in docs.items()}  # fmt: skip


def _page_at(payload: dict, offset: int) -> int:
    page = payload.get("page_start", 1)
    for start, number in payload.get("page_offsets") or []:
        if start <= offset:
            page = number
    return page


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def make_snippet(text: str, spans: list[tuple[int, int]], width: int = SNIPPET_CHARS) -> str:
    """A readable window around the best sentences, which are marked **like this**."""
    if not spans:
        return compact(text[:width])
    start = max(0, spans[0][0] - 80)
    end = min(len(text), max(spans[-1][1], start + width))
    parts, pos = [], start
    for a, b in spans:
        if b <= start or a >= end:
            continue
        parts.append(compact(text[pos:a]))
        parts.append(f"**{compact(text[a:b])}**")
        pos = b
    parts.append(compact(text[pos:end]))
    snippet = " ".join(p for p in parts if p)
    return ("… " if start > 0 else "") + snippet + (" …" if end < len(text) else "")
