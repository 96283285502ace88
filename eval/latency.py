"""Search latency on the real corpus with the model loaded: what a user waits for after typing."""

from __future__ import annotations

import time

import numpy as np

from eval.retrieval import CORPUS_QUESTIONS, read_questions
from kb.records import SearchFilters
from kb.service import KnowledgeBase

# name -> (mode, rerank, filters)
LATENCY_PIPELINES: dict[str, tuple[str, bool, SearchFilters | None]] = {
    "dense": ("dense", False, None),
    "bm25": ("sparse", False, None),
    "hybrid": ("hybrid", False, None),
    "hybrid+rerank": ("hybrid", True, None),
    "hybrid+rerank+filter": ("hybrid", True, SearchFilters(languages=["en"], year_from=2020)),
}


def measure_latency(kb: KnowledgeBase, rounds: int = 2) -> list[dict]:
    questions = [q.question for q in read_questions(CORPUS_QUESTIONS)]
    for q in questions[:3]:
        kb.search(q)  # warm-up: model, store, tokenizer caches
    rows = []
    for name, (mode, rerank, filters) in LATENCY_PIPELINES.items():
        timings = []
        for _ in range(rounds):
            for q in questions:
                started = time.perf_counter()
                kb.search(q, filters, mode=mode, rerank=rerank)
                timings.append(1000 * (time.perf_counter() - started))
        t = np.asarray(timings)
        rows.append({"pipeline": name, "queries": len(t), "p50": float(np.percentile(t, 50)),
                     "p95": float(np.percentile(t, 95)), "max": float(t.max())})  # fmt: skip
    return rows
