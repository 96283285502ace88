"""Language-centring: remove each language's offset from stored vectors, so meaning outranks language.

Multilingual e5 places every text of one language nearer every other text of that language: a French question
ranks a French passage that does not answer it above an English one that does (Yang et al. 2021, "language
bias"). Each language's offset is its mean vector minus the library's mean, estimated robustly:

- a mean per (document, language), so one long report does not stand for its whole language;
- those means averaged with each document weighing at most 1 (a part with few passages weighs less);
- shrunk toward the library mean by ``prior_documents`` pseudo-documents, so a language held by a single
  report keeps most of that report's topic (a language's offset would otherwise remove its one topic).

Passage and sentence vectors are stored centred (``unit(v - offset)``) with their norms and the version of
the offsets used, so they can be restored exactly (``norm * c + offset``) and re-centred when the offsets move:
never re-embedded. Queries stay as embedded (centring them too lost recall on the eval questions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

PASSAGE, SENTENCE = "passage", "sentence"
SPACES = (PASSAGE, SENTENCE)
# payload keys of a centred point: the offsets' version, the passage vector's norm before normalising, and
# each sentence vector's norm
VERSION_KEY, NORM_KEY, SENTENCE_NORMS_KEY = "centring", "norm", "sentence_norms"


@dataclass(frozen=True)
class PartMean:
    """The mean raw vector of one document's passages (or sentences) in one language."""

    doc_id: str
    language: str
    space: str
    count: int
    vector: np.ndarray


@dataclass
class Offsets:
    """One version of the per-language offsets (version 0: nothing removed, the vectors as embedded)."""

    version: int = 0
    vectors: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (space, language) -> offset

    def of(self, space: str, language: str, dim: int) -> np.ndarray:
        found = self.vectors.get((space, language))
        return found if found is not None else np.zeros(dim, dtype=np.float32)

    def languages(self) -> set[str]:
        return {lang for _, lang in self.vectors}


def unit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32), norms[..., 0].astype(np.float32)


def centre(vectors: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of ``vectors - offset`` and the norms that restore them."""
    return unit(np.asarray(vectors, dtype=np.float32) - offset)


def restore(centred: np.ndarray, norms: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The vectors as embedded, from their centred form (exact up to float rounding)."""
    return np.asarray(centred, dtype=np.float32) * np.asarray(norms, dtype=np.float32)[..., None] + offset


def part_means(doc_id: str, space: str, vectors: np.ndarray, languages: list[str]) -> list[PartMean]:
    out = []
    langs = np.asarray(languages)
    for lang in sorted(set(languages)):
        rows = np.asarray(vectors, dtype=np.float32)[langs == lang]
        if len(rows):
            out.append(PartMean(doc_id, lang, space, len(rows), rows.mean(0)))
    return out


def estimate(parts: Iterable[PartMean], prior_documents: float, full_weight: int) -> dict[tuple[str, str], np.ndarray]:
    """Each (space, language) offset from the part means (see the module docstring)."""
    by_space: dict[str, list[PartMean]] = {}
    for p in parts:
        by_space.setdefault(p.space, []).append(p)
    out: dict[tuple[str, str], np.ndarray] = {}
    for space, items in by_space.items():
        library = np.mean([p.vector for p in items], axis=0)
        for lang in sorted({p.language for p in items}):
            mine = [p for p in items if p.language == lang]
            weights = np.array([min(1.0, p.count / full_weight) for p in mine])
            total = np.sum([w * p.vector for w, p in zip(weights, mine, strict=True)], axis=0)
            mean = (total + prior_documents * library) / (weights.sum() + prior_documents)
            out[(space, lang)] = (mean - library).astype(np.float32)
    return out


def moved(old: Offsets, new: dict[tuple[str, str], np.ndarray], tolerance: float) -> set[str]:
    """Languages whose offset (in any space) moved by more than ``tolerance``: their passages need re-centring."""
    out = set()
    for key in set(old.vectors) | set(new):
        a, b = old.vectors.get(key), new.get(key)
        if a is None or b is None:
            if np.linalg.norm(a if a is not None else b) > tolerance:
                out.add(key[1])
        elif np.linalg.norm(a - b) > tolerance:
            out.add(key[1])
    return out
