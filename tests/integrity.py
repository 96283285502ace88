"""The registry/index agreement that every reliability test ends on."""

from __future__ import annotations

from collections import Counter

from kb.records import SearchFilters
from kb.service import KnowledgeBase


def assert_registry_matches_index(kb: KnowledgeBase) -> None:
    """Every document is indexed with exactly its chunks (positions 0..n-1, once each); nothing else is stored."""
    docs = kb.documents()
    assert [d for d in docs if d.status != "indexed"] == [], [(d.file, d.status, d.error) for d in docs]
    for doc in docs:
        points = list(kb.store.scroll(SearchFilters(doc_ids=[doc.doc_id])))
        positions = Counter(p.payload["position"] for p in points)
        assert sorted(positions) == list(range(doc.chunks)), f"{doc.file}: positions {sorted(positions)}"
        assert max(positions.values(), default=1) == 1, f"{doc.file}: duplicate chunks"
        assert len(points) == doc.chunks, doc.file
    stored = {str(p.payload.get("doc_id")) for p in kb.store.scroll(None)}
    known = {d.doc_id for d in docs}
    assert stored == known, f"points of unknown documents: {stored - known}"
    assert kb.store.count() == sum(d.chunks for d in docs)
    report = kb.doctor(repair=False)
    assert report.clean, report.problems
