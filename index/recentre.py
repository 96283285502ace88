"""Keeping the stored vectors centred as the library changes: new offsets, re-centred points, no re-embedding.

After each ingest the offsets are re-estimated from the per-document means in the registry. A language whose
offset moved by more than the tolerance gets a new offsets version and its points are rewritten from their
restored vectors; the other languages keep their offsets exactly, so their points stay as they are. A library
indexed before centring (points without a version) is measured and centred on the first run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from index.centring import (
    NORM_KEY,
    PASSAGE,
    SENTENCE,
    SENTENCE_NORMS_KEY,
    VERSION_KEY,
    Offsets,
    PartMean,
    centre,
    estimate,
    moved,
    part_means,
    restore,
)
from index.store import StoredPoint, VectorStore
from kb.records import SearchFilters

if TYPE_CHECKING:
    from kb.registry import Registry
    from kb.settings import Settings

log = logging.getLogger(__name__)
REWRITE_BATCH = 64


def centred_point(point: StoredPoint, offsets: Offsets) -> StoredPoint:
    """The point with its vectors centred by ``offsets`` for its language (from vectors as embedded)."""
    lang, dim = point.payload.get("language", ""), len(point.dense)
    dense, norm = centre(np.asarray([point.dense]), offsets.of(PASSAGE, lang, dim))
    payload = point.payload | {VERSION_KEY: offsets.version, NORM_KEY: float(norm[0])}
    sentences: list[list[float]] = []
    if point.sentences:
        vecs, norms = centre(np.asarray(point.sentences), offsets.of(SENTENCE, lang, dim))
        sentences, payload[SENTENCE_NORMS_KEY] = vecs.tolist(), norms.tolist()
    return point.model_copy(update={"dense": dense[0].tolist(), "sentences": sentences, "payload": payload})


def raw_point(point: StoredPoint, offsets: Offsets) -> StoredPoint:
    """The point with its vectors as embedded; ``offsets`` must be the version it was centred with."""
    pl = point.payload
    if not pl.get(VERSION_KEY):
        return point
    lang, dim = pl.get("language", ""), len(point.dense)
    dense = restored_dense(point.dense, pl, offsets)
    sentences = point.sentences
    if sentences:
        sentences = restore(
            np.asarray(sentences), np.asarray(pl[SENTENCE_NORMS_KEY]), offsets.of(SENTENCE, lang, dim)
        ).tolist()
    return point.model_copy(update={"dense": dense.tolist(), "sentences": sentences})


def restored_dense(dense: list[float] | np.ndarray, payload: dict, offsets: Offsets) -> np.ndarray:
    """A centred passage vector as embedded; ``offsets`` must be the version it was centred with."""
    vector = np.asarray(dense, dtype=np.float32)
    offset = offsets.of(PASSAGE, payload.get("language", ""), len(vector))
    return restore(vector[None, :], np.asarray([payload[NORM_KEY]]), offset)[0]


def document_means(doc_id: str, points: list[StoredPoint]) -> list[PartMean]:
    """Per-language means of one document's vectors as embedded (passages, and sentences where stored)."""
    langs = [p.payload.get("language", "") for p in points]
    means = part_means(doc_id, PASSAGE, np.asarray([p.dense for p in points]), langs)
    with_sentences = [p for p in points if p.sentences]
    if with_sentences:
        vecs = np.concatenate([np.asarray(p.sentences) for p in with_sentences])
        sent_langs = [p.payload.get("language", "") for p in with_sentences for _ in p.sentences]
        means += part_means(doc_id, SENTENCE, vecs, sent_langs)
    return means


class Recentring:
    def __init__(self, settings: Settings, registry: Registry, store: VectorStore) -> None:
        self.settings, self.registry, self.store = settings, registry, store
        self._versions: dict[int, Offsets] = {}

    def version(self, n: int) -> Offsets:
        if n not in self._versions:
            self._versions[n] = self.registry.offsets(n)
        return self._versions[n]

    def update(self) -> set[str]:
        """Re-estimate the offsets and re-centre the languages that moved; returns those languages."""
        s = self.settings
        if not s.centring:
            return set()
        for doc_id in self.registry.documents_without_means():  # indexed before centring existed
            points = [self.restore(p) for p in self.store.stored_points(SearchFilters(doc_ids=[doc_id]))]
            if points:
                self.registry.save_part_means(doc_id, document_means(doc_id, points))
        current = self.registry.offsets()
        fresh = estimate(self.registry.part_means(), s.centring_prior_documents, s.centring_full_weight_passages)
        languages = moved(current, fresh, s.centring_tolerance)
        if not languages:
            return set()
        # the languages that did not move keep their offsets exactly: their points stay as they are
        kept = {key: v for key, v in current.vectors.items() if key[1] not in languages and key in fresh}
        new = self.registry.save_offsets(kept | {k: v for k, v in fresh.items() if k[1] in languages})
        self._versions[new.version] = new
        rewritten = self._rewrite(languages, new)
        log.info("re-centred %d passages of %s (offsets v%d)", rewritten, ", ".join(sorted(languages)), new.version)
        return languages

    def restore(self, point: StoredPoint) -> StoredPoint:
        return raw_point(point, self.version(point.payload.get(VERSION_KEY) or 0))

    def embedded_dense(self, payload: dict) -> np.ndarray:
        """A scrolled passage vector (``payload['_dense']``) as embedded: what the tagger was trained on."""
        dense = np.asarray(payload["_dense"], dtype=np.float32)
        version = payload.get(VERSION_KEY) or 0
        return restored_dense(dense, payload, self.version(version)) if version else dense

    def _rewrite(self, languages: set[str], offsets: Offsets) -> int:
        """Re-centre every point of these languages not yet centred with ``offsets``, one scan of the index."""
        batch: list[StoredPoint] = []
        done = 0
        for point in self.store.stored_points(None):
            pl = point.payload
            if pl.get("language", "") not in languages or pl.get(VERSION_KEY) == offsets.version:
                continue
            batch.append(centred_point(self.restore(point), offsets))
            if len(batch) >= REWRITE_BATCH:
                self.store.upsert(batch)
                done, batch = done + len(batch), []
        self.store.upsert(batch)
        return done + len(batch)
