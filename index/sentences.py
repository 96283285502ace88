"""Sentence spans and their vectors for retrieved passages, one cache for search and answers.

Cross-lingual hits need sentence vectors to find the sentence (and so the page) that answers a query, and the
evidence answers score the same sentences again. Passages indexed with their sentence vectors (the index
stores them) are put here as they come out of the store; only passages stored without them are encoded, all
missing passages of a query in a single batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from index.embedder import Embedder
from index.text import compact, sentence_spans

MIN_SPAN_CHARS = 15


def spans_of(text: str) -> list[tuple[int, int]]:
    return [sp for sp in sentence_spans(text) if sp[1] - sp[0] >= MIN_SPAN_CHARS] or [(0, len(text))]


class SentenceVectors:
    def __init__(self, embedder: Embedder, capacity: int) -> None:
        self.embedder, self.capacity = embedder, capacity
        self._cache: OrderedDict[str, tuple[list[tuple[int, int]], np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, pid: str, spans: list[tuple[int, int]], vectors: np.ndarray) -> None:
        with self._lock:
            self._put(pid, spans, vectors)

    def _put(self, pid: str, spans: list[tuple[int, int]], vectors: np.ndarray) -> None:
        """Caller holds the lock."""
        self._cache[pid] = (spans, vectors)
        self._cache.move_to_end(pid)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    def get(self, passages: list[tuple[str, str]]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """(spans, unit vectors) for each (passage id, text), encoding only the passages not seen before."""
        with self._lock:
            missing = [(pid, text) for pid, text in dict(passages).items() if pid not in self._cache]
        if missing:
            spans = [spans_of(text) for _, text in missing]
            flat = [compact(text[a:b]) for (_, text), sp in zip(missing, spans, strict=True) for a, b in sp]
            vectors = self.embedder.encode_passages(flat)
            with self._lock:
                pos = 0
                for (pid, _), sp in zip(missing, spans, strict=True):
                    self._put(pid, sp, vectors[pos : pos + len(sp)])
                    pos += len(sp)
        with self._lock:
            out = []
            for pid, _ in passages:
                self._cache.move_to_end(pid)
                out.append(self._cache[pid])
            return out
