"""BM25 sparse vectors for Qdrant: multilingual tokens, accent folding, per-language stems and stopwords.

Qdrant applies the IDF (``Modifier.IDF``); we send the saturated term frequency. Each word is indexed twice:
as its stem in the passage's language (so "regulations" finds "regulation", and "record" finds "records")
and as the plain folded word (so "TEHDAS", "Article 51" or a name match across languages, and an exact match
outranks an inflected one).
Identifiers written with inner punctuation ("DHI 1.4.1", "MyHealth@EU", "HealthDCAT-AP", "dm+d") are also indexed
whole, in their own namespace: their parts ("1", "4", "eu") are common, the whole is rare and decisive.
Indices are crc32 of the token: stable across processes, unlike ``hash()``.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import unicodedata
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path

import snowballstemmer
from pydantic import BaseModel

SNOWBALL = {
    "en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian", "no": "norwegian",
    "nb": "norwegian", "nl": "dutch", "pt": "portuguese", "da": "danish", "sv": "swedish", "fi": "finnish",
    "pl": "polish", "ro": "romanian", "cs": "czech", "hu": "hungarian", "el": "greek", "ru": "russian",
    "lt": "lithuanian", "et": "estonian", "tr": "turkish", "ca": "catalan", "sr": "serbian",
}  # fmt: skip
# NLTK's stopword lists ship inside llama-index-core; locate them without importing it (2 s).
NLTK_STOPWORDS = (
    Path(importlib.util.find_spec("llama_index.core").origin).parent
    / "_static"
    / "nltk_cache"
    / "corpora"
    / "stopwords"
)
TOKEN = re.compile(r"\w+", re.UNICODE)
COMPOUND = re.compile(r"\w+(?:[.@/+\-]\w+)+", re.UNICODE)  # 1.4.1, myhealth@eu, healthdcat-ap, d5.3, dm+d
# Bump when ``terms`` changes: ingestion re-encodes stored passages from their text (no re-embedding).
TERMS_VERSION = "terms2"  # terms2: the stem of every word (not only where stemming changes it); "dm+d" whole


class SparseVector(BaseModel):
    indices: list[int]
    values: list[float]


@lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Lower-case and strip accents: 'Santé' → 'sante', 'Ærø' stays readable as 'ærø'."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


@lru_cache(maxsize=64)
def stopwords(lang: str) -> frozenset[str]:
    name = SNOWBALL.get(lang)
    path = NLTK_STOPWORDS / name if name else None
    if path is None or not path.exists():
        return frozenset()
    return frozenset(fold(w) for w in path.read_text(encoding="utf-8").split())


_local = threading.local()


def _stemmer(lang: str) -> snowballstemmer.stemmer | None:
    """This thread's stemmer: snowball stemmers keep per-word state, and one shared by a search thread and an
    ingesting thread garbles stems (wrong BM25 terms) or raises IndexError."""
    stemmers: dict[str, snowballstemmer.stemmer | None] = _local.__dict__.setdefault("stemmers", {})
    if lang not in stemmers:
        name = SNOWBALL.get(lang)
        stemmers[lang] = snowballstemmer.stemmer(name) if name else None
    return stemmers[lang]


@lru_cache(maxsize=200_000)
def stem_term(word: str, lang: str) -> str | None:
    """The BM25 stem term of a word ("~" + its folded Snowball stem), or None where the language has no stemmer.

    Cached: the encoder asks once per word of every passage, and the same words recur."""
    stemmer = _stemmer(lang)
    if stemmer is None:
        return None
    stem = fold(stemmer.stemWord(word.lower()))
    return "~" + stem if len(stem) > 1 else None  # stems live in their own namespace


def token_index(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF


class SparseEncoder:
    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 180.0) -> None:
        self.k1, self.b, self.avg_len = k1, b, avg_len

    def terms(self, text: str, lang: str) -> list[str]:
        """The index terms of a text: folded words minus stopwords, each with its stem, and whole compounds."""
        stop = stopwords(lang) | stopwords("en")
        out: list[str] = []
        for word in TOKEN.findall(text.lower()):
            folded = fold(word)
            if folded in stop or (len(folded) < 2 and not folded.isdigit()) or folded == "_" * len(folded):
                continue
            out.append(folded)
            # the stem also when it is the word itself: "record" must meet the "records" stem
            if not folded.isdigit() and (stem := stem_term(word, lang)):
                out.append(stem)
        out += ["#" + fold(c) for c in COMPOUND.findall(text.lower())]
        return out

    def encode_document(self, text: str, lang: str) -> SparseVector:
        terms = self.terms(text, lang)
        n_words = sum(1 for t in terms if t[0] not in "~#") or 1
        tf = Counter(token_index(t) for t in terms)
        norm = self.k1 * (1 - self.b + self.b * n_words / self.avg_len)
        items = sorted(tf.items())
        return SparseVector(
            indices=[i for i, _ in items], values=[round(f * (self.k1 + 1) / (f + norm), 4) for _, f in items]
        )

    def encode_query(self, text: str, lang: str) -> SparseVector:
        indices = sorted({token_index(t) for t in self.terms(text, lang or "en")})
        return SparseVector(indices=indices, values=[1.0] * len(indices))
