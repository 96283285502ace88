"""`kb eval countries`: precision and recall of the countries-discussed tags against hand-labelled passages.

Two files: ``country_labels.jsonl`` (labelled before the tagger existed, then used to fix its rules: the tuning
row) and ``country_labels_heldout.jsonl`` (labelled afterwards, never looked at while changing the rules: the
row to quote). Scores are micro-averaged over country codes, per language and overall, plus the share of
passages whose set of countries is exactly right.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel

from alignment.countries import CountryRecognizer

DATA = Path(__file__).resolve().parent / "data"
TUNING_FILE, HELDOUT_FILE = DATA / "country_labels.jsonl", DATA / "country_labels_heldout.jsonl"


class CountryScore(BaseModel):
    group: str  # "all" or a language code
    passages: int
    gold_mentions: int
    precision: float
    recall: float
    f1: float
    exact: float  # passages whose predicted set equals the gold set


class CountryMiss(BaseModel):
    id: str
    language: str
    extra: list[str]
    missed: list[str]


class CountryEval(BaseModel):
    file: str
    scores: list[CountryScore]
    misses: list[CountryMiss]


def _score(group: str, pairs: list[tuple[set[str], set[str]]]) -> CountryScore:
    tp = sum(len(p & g) for p, g in pairs)
    fp = sum(len(p - g) for p, g in pairs)
    fn = sum(len(g - p) for p, g in pairs)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    exact = sum(p == g for p, g in pairs) / len(pairs) if pairs else 0.0
    return CountryScore(group=group, passages=len(pairs), gold_mentions=tp + fn, precision=round(precision, 3),
                        recall=round(recall, 3), f1=round(f1, 3), exact=round(exact, 3))  # fmt: skip


def evaluate_countries(recognizer: CountryRecognizer, path: Path) -> CountryEval:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_language: dict[str, list[tuple[set[str], set[str]]]] = defaultdict(list)
    misses = []
    for row in rows:
        predicted, gold = set(recognizer.countries(row["text"])), set(row["countries"])
        by_language[row["language"]].append((predicted, gold))
        if predicted != gold:
            misses.append(CountryMiss(id=row["id"], language=row["language"], extra=sorted(predicted - gold),
                                      missed=sorted(gold - predicted)))  # fmt: skip
    everything = [pair for pairs in by_language.values() for pair in pairs]
    scores = [_score("all", everything)] + [_score(lang, by_language[lang]) for lang in sorted(by_language)]
    return CountryEval(file=path.name, scores=scores, misses=misses)
