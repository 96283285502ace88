"""Hybrid, cross-lingual, filtered retrieval that returns citable hits.

Three retrievers run inside Qdrant under the filters: passage vectors (e5, query prefix), sentence vectors
compared by MaxSim (a passage found by its one best sentence: precise questions, cross-lingual ones) and BM25
(identifiers, names). Their candidates are fused with weighted RRF. The fused list is re-scored (``rerank``)
with the exact passage and best-sentence similarities and the query-term coverage, near-duplicates collapse
onto the best copy, and each hit's page is the page of its best-matching sentence, not the chunk's first page.

Keyword-style queries ("DHI 1.4.1", "MyHealth@EU") are not questions: the few words carry little meaning for
the embeddings and everything for BM25. They are fused with a small RRF constant (so BM25's weight bites) and
re-scored with the BM25 score itself, whose IDF lets a rare identifier outweigh common words.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from index.embedder import Embedder
from index.sentences import SentenceVectors, spans_of
from index.sparse import SparseEncoder, SparseVector, token_index
from index.store import ScoredPoint, VectorStore
from index.text import compact, overlap, shared, shingles, terms
from ingest.language import detect
from kb.records import Hit, SearchFilters, page_at
from kb.settings import Settings

MODES = ("hybrid", "dense", "sparse", "sentences")
FACET_FIELDS = {"language": "doc_language", "country": "country", "doc_type": "doc_type",
                "publisher": "publisher", "year": "year", "objective": "labels", "about": "about"}  # fmt: skip
SNIPPET_CHARS = 420
FUSED_TIE = 1e-9  # fused scores closer than this are a tie (float sums of equal RRF terms)


class SearchResult(BaseModel):
    query: str
    query_language: str = ""
    hits: list[Hit] = Field(default_factory=list)
    facets: dict[str, dict[str, int]] = Field(default_factory=dict)
    candidates: int = 0
    query_vector: list[float] = Field(default_factory=list, exclude=True)  # reused by the answerer
    keyword: bool = Field(False, exclude=True)  # keyword-style (is_keyword_query): decided once, for search and answer

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
                        "about",
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
    sparse: SparseVector  # the BM25 query vector: fusion and keyword re-scoring share it
    keyword: bool  # keyword-style (see is_keyword_query), not a question


class Searcher:
    def __init__(self, settings: Settings, store: VectorStore, embedder: Embedder, sparse: SparseEncoder) -> None:
        self.settings, self.store, self.embedder, self.sparse = settings, store, embedder, sparse
        self.sentences = SentenceVectors(embedder, settings.sentence_cache)

    def prepare(self, query: str) -> QueryVectors:
        lang, _ = detect(query)
        dense = self.embedder.encode_queries([query])[0].tolist()
        keyword = is_keyword_query(query, self.settings.keyword_query_max_words)
        sparse = self.sparse.encode_query(query, lang)
        return QueryVectors(query, lang, dense, terms(query, lang or "en"), sparse, keyword)

    def weights(self, q: QueryVectors, mode: str) -> tuple[float, float, float]:
        """RRF weights of (passage vectors, BM25, sentence vectors); single-retriever modes are the baselines."""
        s = self.settings
        if mode != "hybrid":
            return {"dense": (1.0, 0.0, 0.0), "sparse": (0.0, 1.0, 0.0), "sentences": (0.0, 0.0, 1.0)}[mode]
        sparse = s.fusion_keyword_sparse_weight if q.keyword else s.fusion_sparse_weight
        return (s.fusion_dense_weight, sparse, s.fusion_sentence_weight)

    def rrf_k(self, q: QueryVectors) -> int:
        return self.settings.keyword_rrf_k if q.keyword else self.settings.rrf_k

    def candidates(self, q: QueryVectors, filters: SearchFilters | None, mode: str, limit: int) -> list[ScoredPoint]:
        s = self.settings
        weights = self.weights(q, mode)
        dense = q.dense if weights[0] or weights[2] else None
        sparse = q.sparse if weights[1] else None
        points = self.store.query(dense, sparse, filters, limit=limit, candidates=s.candidates, rrf_k=self.rrf_k(q),
                                  weights=weights)  # fmt: skip
        points.sort(key=lambda p: (-p.score, str(p.id)))  # equal scores in a fixed order, run after run
        for p in points:  # sentence vectors stored with the passage: no encoding at query time
            spans, vectors = p.payload.get("sentence_spans"), p.payload.get("_sentences")
            if spans and vectors is not None and len(spans) == len(vectors):
                p.payload["_sentences"] = np.asarray(vectors, dtype=np.float32)
                self.sentences.put(p.id, [tuple(sp) for sp in spans], p.payload["_sentences"])
        return points

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
        hits = self.to_hits(q, self.collapse(points, k))
        return SearchResult(
            query=query, query_language=q.language, hits=hits, facets=self.facets(points), candidates=len(points),
            query_vector=q.dense, keyword=q.keyword,
        )  # fmt: skip

    # --- scoring -------------------------------------------------------------------------------------------
    def rerank(self, q: QueryVectors, points: list[ScoredPoint]) -> list[ScoredPoint]:
        """Blend fused rank with exact meaning (passage and best sentence) and query-term coverage."""
        s = self.settings
        query = np.asarray(q.dense, dtype=np.float32)
        vecs = self._vectors(points)
        dense_sim = vecs @ query if vecs is not None else np.zeros(len(points))
        if s.rerank_sentence_share > 0:
            stored = [self._stored_sentences(p) for p in points]
            best = np.array(
                [float((v @ query).max()) if v is not None else d for v, d in zip(stored, dense_sim, strict=True)]
            )
            dense_sim = (1 - s.rerank_sentence_share) * dense_sim + s.rerank_sentence_share * best
        if q.language:
            other = np.array([p.payload.get("language", q.language) != q.language for p in points])
            dense_sim = dense_sim + s.rerank_cross_lingual_bonus * other
        # the fused rank as a prior; candidates the fusion scored equal share their best rank (among themselves
        # they stand in id order only, since Qdrant returns ties in an order that changes between processes)
        fused = np.array([p.score for p in points])
        rank = (fused[None, :] > fused[:, None] + FUSED_TIE).sum(axis=1)
        rrf = 1.0 / (self.rrf_k(q) + 1 + rank)
        if q.keyword:
            lexical = self._bm25_share(q, points)
            dense_weight, lexical_weight = s.rerank_keyword_dense_weight, s.rerank_keyword_lexical_weight
        else:
            lexical = np.array([self._coverage(q, p) for p in points])
            dense_weight, lexical_weight = s.rerank_dense_weight, s.rerank_lexical_weight
        score = s.rerank_rrf_weight * rrf / rrf.max() + dense_weight * _minmax(dense_sim) + lexical_weight * lexical
        order = np.argsort(-score, kind="stable")
        return [points[i].model_copy(update={"score": float(score[i])}) for i in order]

    def _bm25_share(self, q: QueryVectors, points: list[ScoredPoint]) -> np.ndarray:
        """Each candidate's BM25 score over the best candidate's (0 when it shares no term with the query)."""
        scores = self.store.sparse_scores(q.sparse, [p.id for p in points])
        values = np.array([scores.get(p.id, 0.0) for p in points])
        return values / values.max() if values.max() > 0 else values

    def _coverage(self, q: QueryVectors, p: ScoredPoint) -> float:
        """Share of the query's terms in the passage, from its stored BM25 term ids (no text processing)."""
        stored = p.payload.get("_terms")
        if stored is None:
            return overlap(q.terms, p.payload.get("text", ""), p.payload.get("language", "en"))
        if not q.terms:
            return 0.0
        have = set(stored)
        return sum(token_index(t) in have for t in q.terms) / len(q.terms)

    def _stored_sentences(self, p: ScoredPoint) -> np.ndarray | None:
        vectors = p.payload.get("_sentences")
        return np.asarray(vectors, dtype=np.float32) if vectors is not None and len(vectors) else None

    def _vectors(self, points: list[ScoredPoint]) -> np.ndarray | None:
        vecs = [p.payload.get("_dense") for p in points]
        if any(v is None for v in vecs):
            texts = [p.payload.get("text", "") for p in points]
            return self.embedder.encode_passages(texts) if texts else None
        return np.asarray(vecs, dtype=np.float32)

    def collapse(self, points: list[ScoredPoint], limit: int | None = None) -> list[ScoredPoint]:
        """Keep the best of near-identical passages (the same text in two documents, overlapping chunks), up to
        ``limit`` passages."""
        kept: list[ScoredPoint] = []
        kept_grams: list[set] = []
        for p in points:
            text = p.payload.get("text", "")
            grams = shingles(text)
            if len(grams) >= 10 and any(shared(grams, k) >= self.settings.dedup_threshold for k in kept_grams):
                continue
            kept.append(p)
            kept_grams.append(grams)
            if limit is not None and len(kept) >= limit:
                break
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
        if q.language and q.language != lang:
            return None
        stored = p.payload.get("sentence_spans")
        spans = [tuple(sp) for sp in stored] if stored else spans_of(text)
        scores = np.array([overlap(q.terms, text[a:b], lang) for a, b in spans])
        if scores.max() <= 0:
            return None
        scores += 1e-3 * np.arange(len(spans))[::-1] / len(spans)  # ties: the earlier sentence
        good = scores >= max(scores.max() * 0.5, 1e-2)  # others must share at least half as many query terms
        return [spans[i] for i in np.argsort(-scores, kind="stable") if good[i]][:n]

    def to_hit(self, p: ScoredPoint, spans: list[tuple[int, int]]) -> Hit:
        pl = p.payload
        text = pl.get("text", "")
        first = pl.get("page_start", 1)
        page = page_at(pl.get("page_offsets") or [], first, spans[0][0]) if spans else first  # best sentence's page
        return Hit(
            chunk_id=pl.get("chunk_id", p.id), doc_id=pl.get("doc_id", ""), file=pl.get("file", ""),
            title=pl.get("title", ""), publisher=pl.get("publisher", ""), year=pl.get("year"),
            country=pl.get("country", ""), doc_type=pl.get("doc_type", ""), language=pl.get("language", ""),
            page=page, pages=(pl.get("page_start", page), pl.get("page_end", page)), score=round(p.score, 5),
            text=text, snippet=make_snippet(text, sorted(spans)), labels=pl.get("label_scores", {}) or {},
            label_triggers=pl.get("label_triggers") or {}, label_reviews=pl.get("label_reviews") or {},
            about=pl.get("about") or [], page_offsets=[tuple(x) for x in pl.get("page_offsets") or []],
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


# Words that open a question in the Region's languages: "cost of the Malawi strategy" is a search-box query,
# "what is the cost of the Malawi strategy" a question even when typed without "?".
_QUESTION_WORDS = {
    "en": "what which who whom whose when where why how is are does do can could should",
    "fr": "quel quelle quels quelles qui que quoi quand où pourquoi comment combien est-ce",
    "de": "was welche welcher welches wer wann wo warum wie wieviel wieviele ist sind kann gibt",
    "es": "qué que cuál cuáles quién cuándo dónde por cómo cuánto cuántos cuántas",
    "it": "che cosa quale quali chi quando dove perché come quanto quanti quante",
    "no": "hva hvilke hvilken hvem når hvor hvorfor hvordan",
    "pl": "co jaki jakie która który kto kiedy gdzie dlaczego jak ile czy",
    "nl": "wat welke wie wanneer waar waarom hoe hoeveel",
    "pt": "qual quais quem quando onde porque como quanto",
}
INTERROGATIVES = frozenset(word for words in _QUESTION_WORDS.values() for word in words.split())


def is_keyword_query(text: str, max_words: int) -> bool:
    """A search-box query (acronyms, article numbers, names) rather than a question: words decide more."""
    words = re.findall(r"[\w-]+", text.lower())
    return "?" not in text and 0 < len(words) <= max_words and words[0] not in INTERROGATIVES


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
