"""Language-centring: offsets estimated robustly, vectors restorable exactly, re-centred without re-embedding."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from index.centring import PASSAGE, VERSION_KEY, Offsets, PartMean, centre, estimate, moved, restore
from kb.records import SearchFilters
from kb.service import KnowledgeBase
from tests.conftest import SMALL_DOCS, copy_docs

RNG = np.random.default_rng(7)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_centred_vectors_restore_exactly() -> None:
    vectors = _unit(RNG.normal(size=(5, 16))).astype(np.float32)
    offset = RNG.normal(size=16).astype(np.float32) * 0.2
    centred, norms = centre(vectors, offset)
    assert np.allclose(np.linalg.norm(centred, axis=1), 1.0, atol=1e-5)
    assert np.allclose(restore(centred, norms, offset), vectors, atol=1e-5)


def test_offsets_weigh_documents_not_passages_and_shrink_a_lone_document() -> None:
    en_a, en_b, fr = np.eye(3, dtype=np.float32)
    parts = [
        PartMean("a", "en", PASSAGE, 1000, en_a),  # one long report must not stand for its language
        PartMean("b", "en", PASSAGE, 20, en_b),
        PartMean("c", "fr", PASSAGE, 20, fr),
    ]
    offsets = estimate(parts, prior_documents=0.0, full_weight=20)
    library = (en_a + en_b + fr) / 3
    assert np.allclose(offsets[(PASSAGE, "en")], (en_a + en_b) / 2 - library)
    shrunk = estimate(parts, prior_documents=1.0, full_weight=20)
    # a language held by one document keeps half of its direction with one pseudo-document of the library mean
    assert np.allclose(shrunk[(PASSAGE, "fr")], (fr - library) / 2)


def test_only_languages_whose_offset_moved_are_recentred() -> None:
    old = Offsets(1, {(PASSAGE, "en"): np.zeros(3), (PASSAGE, "fr"): np.array([0.1, 0, 0])})
    new = {(PASSAGE, "en"): np.array([0.001, 0, 0]), (PASSAGE, "fr"): np.array([0.2, 0, 0]),
           (PASSAGE, "de"): np.array([0, 0.3, 0])}  # fmt: skip
    assert moved(old, new, tolerance=0.01) == {"fr", "de"}


def test_a_library_is_centred_and_recentred_as_it_grows_without_reembedding(
    make_kb: Callable[..., KnowledgeBase], tmp_path
) -> None:
    corpus = tmp_path / "corpus"
    copy_docs([SMALL_DOCS["en"], SMALL_DOCS["fr"]], corpus)
    kb = make_kb(centring=False)  # an index from before centring: vectors as embedded
    kb.ingest()
    kb.close()
    kb = make_kb(centring=True)
    kb.ingest()  # nothing to embed; the offsets are measured and the index centred in place
    first = kb.registry.offsets()
    assert first.version == 1 and first.languages() == {"en", "fr"}
    points = list(kb.store.stored_points(None))
    assert all(p.payload[VERSION_KEY] == 1 for p in points)
    texts = [p.payload["text"] for p in points[:4]]
    embedded = kb.embedder.encode_passages_with_spans(texts, [[(0, len(t))] for t in texts])[0]
    restored = np.asarray([kb.recentring.restore(p).dense for p in points[:4]])
    assert np.allclose(restored, embedded, atol=1e-4)  # the stored vectors give back the embedding exactly
    assert not np.allclose(np.asarray([p.dense for p in points[:4]]), embedded, atol=1e-2)  # stored centred

    copy_docs([SMALL_DOCS["de"]], corpus)
    kb.ingest()  # a new language: the offsets move, moved languages are rewritten from restored vectors
    second = kb.registry.offsets()
    assert second.version == 2 and "de" in second.languages()
    german = list(kb.store.stored_points(SearchFilters(languages=["de"])))
    assert german and all(p.payload[VERSION_KEY] == 2 for p in german)
    again = np.asarray([kb.recentring.restore(p).dense for p in kb.store.stored_points(None) if p.id == points[0].id])
    assert np.allclose(again[0], embedded[0], atol=1e-4)  # re-centring loses nothing
