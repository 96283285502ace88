"""Sentence-level evidence: score every sentence of the retrieved passages against the question, keep the best.

The passages come from hybrid search; here each sentence is embedded (e5 passage side) and compared with the
question (query side), so a French question scores English sentences by meaning. Selection keeps sentences
close to the best one, at most a few per document (diversity across sources) and no near-repeats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from index.sentences import SentenceVectors, spans_of
from index.sparse import COMPOUND
from index.text import compact, containment, overlap, terms
from kb.records import Hit

MAX_SENTENCE_CHARS = 600
FURNITURE = re.compile(r"(©|\(c\)|copyright\b|source\s*:|sources\s*:|quelle\s*:|fuente\s*:|fonte\s*:)", re.IGNORECASE)
INJECTION = re.compile(
    r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules|above|previous)\b"
    r"|\b(system prompt|you are now|new instructions|as an ai\b|jailbreak)"
    r"|\b(ignorez|ignoriere|ignora)\b.{0,40}\b(instructions?|anweisungen|istruzioni|instrucciones)\b",
    re.IGNORECASE | re.DOTALL,
)


def is_instruction(text: str) -> bool:
    """Text addressed to a language model rather than to a reader: shown as data, never quoted as evidence."""
    return bool(INJECTION.search(text))


@dataclass
class Sentence:
    hit: Hit
    rank: int  # the passage's rank in search
    start: int
    end: int
    text: str
    page: int
    span: tuple[int, int] = (0, 0)  # the sentence span as split (its vector's key), before trimming
    similarity: float = 0.0  # question–sentence cosine (e5)
    lexical: float = 0.0  # share of question terms in the sentence
    score: float = 0.0


def readable(text: str) -> bool:
    """Prose, not a table row, a page furniture line or a run of numbers."""
    letters = sum(c.isalpha() for c in text)
    return letters >= 0.55 * len(text) and len(re.findall(r"\w+", text)) >= 5


def trim_furniture(text: str, a: int, b: int) -> int:
    """Move a sentence's start past leading layout lines (credits, sources, all-caps headings) glued to it."""
    while (nl := text.find("\n", a, b)) >= 0:
        line = text[a:nl].strip()
        if not (FURNITURE.match(line) or (line.isupper() and len(line.split()) <= 6) or not line):
            break
        a = nl + 1
    return a


def split_sentences(hits: list[Hit], min_chars: int) -> list[Sentence]:
    out = []
    for rank, hit in enumerate(hits):
        for span in spans_of(hit.text):
            a, b = trim_furniture(hit.text, *span), span[1]
            if FURNITURE.match(hit.text[a:b].strip()):
                continue
            text = compact(hit.text[a:b])
            if len(text) < min_chars or not readable(text) or is_instruction(text):
                continue
            if len(text) > MAX_SENTENCE_CHARS:
                text = text[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " …"
            out.append(Sentence(hit, rank, a, b, text, hit.page_at(a), span=span))
    return out


def score_sentences(
    question: str, question_language: str, question_vector: np.ndarray, sentences: list[Sentence],
    vectors: SentenceVectors, lexical_weight: float, rank_weight: float = 0.0,
) -> list[Sentence]:  # fmt: skip
    """Rank by meaning (question–sentence cosine), plus a little query-term overlap and a little of the
    passage's search rank (which already weighed the whole passage's meaning and words)."""
    if not sentences:
        return []
    hits = list({s.hit.chunk_id: s.hit for s in sentences}.values())
    by_span = {}
    for hit, (spans, vecs) in zip(hits, vectors.get([(h.chunk_id, h.text) for h in hits]), strict=True):
        by_span |= {(hit.chunk_id, a, b): v for (a, b), v in zip(spans, vecs, strict=True)}
    q_terms = terms(question, question_language or "en")
    for s in sentences:
        s.similarity = float(by_span[(s.hit.chunk_id, *s.span)] @ question_vector)
        s.lexical = overlap(q_terms, s.text, s.hit.language or "en")
        s.score = s.similarity + lexical_weight * s.lexical + rank_weight / (s.rank + 1)
    return sorted(sentences, key=lambda s: -s.score)


def select(
    ranked: list[Sentence], max_sentences: int, per_document: int, margin: float, redundancy: float
) -> list[Sentence]:
    """Greedy pick: close to the best score, few per document, no sentence that repeats one already kept."""
    if not ranked:
        return []
    floor = ranked[0].score - margin
    kept: list[Sentence] = []
    per_doc: dict[str, int] = {}
    for s in ranked:
        if s.score < floor or len(kept) >= max_sentences:
            break
        if per_doc.get(s.hit.doc_id, 0) >= per_document:
            continue
        if any(containment(s.text, k.text) >= redundancy for k in kept):
            continue
        kept.append(s)
        per_doc[s.hit.doc_id] = per_doc.get(s.hit.doc_id, 0) + 1
    return kept


YEAR_RANGE = re.compile(r"(?:19|20)\d\d-(?:19|20)?\d\d")


def identifiers(question: str) -> list[str]:
    """Codes a query names (1.4.1, dm+d, MyHealth@EU, 2016/679): compound words with a digit, '@' or '+' in
    them, but not a year range (2020-2025), which titles name far more often than codes do."""
    return [
        c for c in dict.fromkeys(COMPOUND.findall(question))
        if re.search(r"[\d@+]", c) and not YEAR_RANGE.fullmatch(c)
    ]  # fmt: skip


def naming(ranked: list[Sentence], codes: list[str]) -> list[Sentence]:
    """The sentences that name every code, whole ('1.4.1' is not in '11.4.1'), in their ranked order.

    For a search-box lookup of a code the question–sentence cosine says little (two tokens against a
    sentence), while a sentence that names the code is the evidence the user asked for.
    """
    patterns = [re.compile(rf"(?<![\w.]){re.escape(c)}(?!\w)", re.IGNORECASE) for c in codes]
    return [s for s in ranked if patterns and all(p.search(s.text) for p in patterns)]
