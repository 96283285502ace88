"""Sentence spans and lexical overlap, shared by search snippets, dedup and evidence answers."""

from __future__ import annotations

import re
from functools import cache

from index.sparse import SparseEncoder

_encoder = SparseEncoder()
MIN_SENTENCE_CHARS = 25


@cache
def punkt():
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence (start, end) offsets; line breaks inside PDF paragraphs don't split, blank lines and bullets do."""
    spans: list[tuple[int, int]] = []
    for block in re.finditer(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\n\s*[•▪●\-–]\s|\s*\Z)", text, re.DOTALL):
        for s, e in punkt().span_tokenize(block.group(0)):
            spans.append((block.start() + s, block.start() + e))
    return spans


def terms(text: str, lang: str = "en") -> set[str]:
    return set(_encoder.terms(text, lang))


def overlap(query_terms: set[str], text: str, lang: str) -> float:
    """Share of the query's terms (words or stems) found in the text."""
    if not query_terms:
        return 0.0
    return len(query_terms & terms(text, lang)) / len(query_terms)


def containment(a: str, b: str) -> float:
    """How much of the shorter text's vocabulary the other one holds (1.0: one contains the other)."""
    ta, tb = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / min(len(ta), len(tb))


def shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(max(len(words) - n + 1, 1))} if words else set()


def shared(sa: set, sb: set) -> float:
    """Share of the smaller n-gram set (``shingles``) found in the other: high only when two texts quote the
    same passage."""
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / min(len(sa), len(sb))


def compact(text: str) -> str:
    return " ".join(text.split())
