"""Ranking metrics over binary relevance: recall@k, MRR@k and nDCG@k, with grouping for the report tables."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel

CUTOFFS = (1, 5, 10)


def recall_at(relevant: list[bool], k: int) -> float:
    """1 when any of the first k results is relevant (one answer suffices for a question)."""
    return float(any(relevant[:k]))


def mrr_at(relevant: list[bool], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, r in enumerate(relevant[:k]) if r), 0.0)


def ndcg_at(relevant: list[bool], k: int = 10, ideal_hits: int = 1) -> float:
    """Binary nDCG where at most ``ideal_hits`` relevant results count (more passages quoting the same answer
    are not extra gain), so the score stays within [0, 1]."""
    positions = [i for i, r in enumerate(relevant[:k]) if r][: max(ideal_hits, 1)]
    dcg = sum(1.0 / math.log2(i + 2) for i in positions)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(max(ideal_hits, 1), k)))
    return dcg / idcg


class Scores(BaseModel):
    n: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr_at_10: float
    ndcg_at_10: float


class QuestionScore(BaseModel):
    id: str
    groups: dict[str, str]  # e.g. {"type": "cross-lingual", "lang": "fr"}
    relevant: list[bool]
    ideal_hits: int = 1


def aggregate(items: Iterable[QuestionScore]) -> Scores:
    items = list(items)
    n = len(items) or 1

    def mean(values: Iterable[float]) -> float:
        return round(sum(values) / n, 4)

    return Scores(
        n=len(items),
        recall_at_1=mean(recall_at(q.relevant, 1) for q in items),
        recall_at_5=mean(recall_at(q.relevant, 5) for q in items),
        recall_at_10=mean(recall_at(q.relevant, 10) for q in items),
        mrr_at_10=mean(mrr_at(q.relevant, 10) for q in items),
        ndcg_at_10=mean(ndcg_at(q.relevant, 10, q.ideal_hits) for q in items),
    )


def breakdown(items: list[QuestionScore]) -> dict[str, Scores]:
    """Overall scores plus one row per value of every grouping key ("type=keyword", "lang=fr"...)."""
    groups: dict[str, list[QuestionScore]] = defaultdict(list)
    for q in items:
        for key, value in q.groups.items():
            groups[f"{key}={value}"].append(q)
    return {"all": aggregate(items)} | {name: aggregate(groups[name]) for name in sorted(groups)}
