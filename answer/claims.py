"""Claim check: every answer sentence must be supported by the passage it cites, or it is dropped.

Support needs every figure the sentence states to be in the passage, plus either meaning (the sentence's best
cosine against the cited passage's sentences) or wording (share of its key terms found in the passage). A
verbatim quote always passes; an invented figure or fact does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from index.embedder import Embedder
from index.text import compact, sentence_spans, terms


@dataclass
class Claim:
    text: str
    cited: list[int]  # citation numbers (1-based) after invented ones were removed
    similarity: float = 0.0
    overlap: float = 0.0
    supported: bool = False


def key_terms(text: str, lang: str) -> set[str]:
    """Content terms, ignoring citation markers and bare numbers of one digit."""
    return {t for t in terms(text, lang) if not (t.isdigit() and len(t) < 2)}


def numbers(text: str) -> set[str]:
    """Figures a claim states (years, amounts, percentages): each must appear in the cited passage."""
    return {n.replace(",", "").replace(" ", "") for n in re.findall(r"\d[\d, ]*\d|\d", text)}


def check_claims(
    claims: list[Claim], passages: list[str], embedder: Embedder, lang: str, min_similarity: float, min_overlap: float
) -> list[Claim]:
    """Mark each claim supported or not; a claim citing nothing is unsupported."""
    for claim in claims:
        cited = [passages[n - 1] for n in claim.cited if 0 < n <= len(passages)]
        if not cited or not claim.text.strip():
            continue
        source = " ".join(cited)
        if compact(claim.text).lower() in compact(source).lower():
            claim.similarity, claim.overlap, claim.supported = 1.0, 1.0, True
            continue
        words = key_terms(claim.text, lang)
        source_terms = key_terms(source, lang) | key_terms(source, "en")
        claim.overlap = len(words & source_terms) / len(words) if words else 0.0
        sentences = [compact(source[a:b]) for a, b in sentence_spans(source)] or [source]
        vecs = embedder.encode_passages([claim.text, *sentences])
        claim.similarity = float(np.max(vecs[1:] @ vecs[0]))
        figures_ok = numbers(claim.text) <= numbers(source)
        claim.supported = figures_ok and (claim.similarity >= min_similarity or claim.overlap >= min_overlap)
    return claims
