"""Re-runs embed only what changed: unchanged, changed, deleted and duplicate files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from index.sparse import SparseVector
from kb.records import FileStatus, IngestReport
from kb.service import KnowledgeBase

DOC_A = "# Telemedicine\n\nRemote consultations are reimbursed like visits in person since 2023.\n\n" * 3
DOC_B = "# Interoperability\n\nHospitals must exchange discharge letters in HL7 FHIR format.\n\n" * 3


def statuses(report: IngestReport) -> dict[str, str]:
    return {Path(f.path).name: f.status.value for f in report.files}


def consistent(kb: KnowledgeBase) -> None:
    """Registry and index agree: every indexed document has exactly its chunks, nothing else is stored."""
    docs = kb.documents()
    for d in docs:
        assert d.status == "indexed"
        assert len(kb.store.point_ids(d.doc_id)) == d.chunks
    assert kb.store.count() == sum(d.chunks for d in docs)


def test_unchanged_changed_deleted_and_duplicate(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path]
) -> None:
    kb = make_kb()
    a = write_md("a.md", DOC_A)
    b = write_md("b.md", DOC_B)
    first = kb.ingest()
    assert statuses(first) == {"a.md": "added", "b.md": "added"}
    consistent(kb)

    again = kb.ingest()
    assert statuses(again) == {"a.md": "unchanged", "b.md": "unchanged"}
    assert again.totals()["chunks"] == 0

    old_id = next(f.doc_id for f in first.files if f.path.endswith("a.md"))
    a.write_text(DOC_A + "\nNew: video consultations need a secure platform.\n", encoding="utf-8")
    changed = kb.ingest()
    assert statuses(changed) == {"a.md": "updated", "b.md": "unchanged"}
    assert kb.registry.get(old_id) is None and not kb.store.point_ids(old_id)
    consistent(kb)

    shutil.copy(b, b.with_name("copy of b.md"))
    dup = kb.ingest()
    assert statuses(dup)["copy of b.md"] == "duplicate"
    doc_b = kb.registry.by_file("b.md")
    assert doc_b is not None and len(doc_b.paths) == 2
    consistent(kb)

    b.unlink()
    after_one_delete = kb.ingest()
    assert "b.md" not in statuses(after_one_delete)  # the copy still carries the document
    assert kb.registry.by_file("copy of b.md") is not None
    b.with_name("copy of b.md").unlink()
    removed = kb.ingest()
    assert statuses(removed) == {"a.md": "unchanged", "copy of b.md": "removed"}
    assert len(kb.documents()) == 1
    consistent(kb)


def test_renamed_file_is_not_embedded_again(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path]
) -> None:
    kb = make_kb()
    a = write_md("draft.md", DOC_A)
    kb.ingest()
    a.rename(a.with_name("final.md"))
    report = kb.ingest()
    assert statuses(report) == {"final.md": "unchanged"}
    assert [Path(p).name for p in kb.documents()[0].paths] == ["final.md"]
    consistent(kb)


def test_bad_file_is_reported_and_the_batch_goes_on(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path], tmp_path: Path
) -> None:
    kb = make_kb()
    write_md("good.md", DOC_B)
    (tmp_path / "corpus" / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj garbage")
    report = kb.ingest()
    rows = {Path(f.path).name: f for f in report.files}
    assert rows["good.md"].status is FileStatus.ADDED
    assert rows["broken.pdf"].status is FileStatus.FAILED and "corrupt PDF" in rows["broken.pdf"].error
    assert kb.ingest().files[0].status is FileStatus.FAILED  # still reported on the next run, without re-reading
    consistent(kb)


def test_changed_bm25_terms_are_re_encoded_without_re_embedding(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path], monkeypatch
) -> None:
    """A library indexed under older BM25 terms gets the current ones from its stored texts; vectors stay."""
    kb = make_kb()
    write_md("a.md", DOC_A)
    kb.ingest()
    doc_id = kb.documents()[0].doc_id
    current = kb.registry.fingerprints(doc_id)[0]
    ids = kb.store.point_ids(doc_id)
    # as left by an older release: a fingerprint without the terms version, points holding other terms
    kb.registry.set_index_fingerprint(doc_id, current.rpartition("|")[0])
    kb.store.set_sparse({i: SparseVector(indices=[7], values=[1.0]) for i in ids})
    assert not kb.search("reimburse", mode="sparse").hits
    vectors = {p.id: p.payload["_dense"] for p in kb.store.scroll(with_dense=True)}

    def refuse(*_args, **_kwargs):
        raise AssertionError("re-encoding BM25 terms must not embed")

    monkeypatch.setattr(kb.embedder, "encode_passages", refuse)
    monkeypatch.setattr(kb.embedder, "encode_passages_with_spans", refuse)
    assert statuses(kb.ingest()) == {"a.md": "unchanged"}
    assert kb.registry.fingerprints(doc_id)[0] == current
    hits = kb.search("reimburse", mode="sparse").hits  # the stem meets "reimbursed"
    assert hits and {h.chunk_id for h in hits} <= ids
    assert {p.id: p.payload["_dense"] for p in kb.store.scroll(with_dense=True)} == vectors
    monkeypatch.setattr(kb.store, "set_sparse", refuse)
    assert statuses(kb.ingest()) == {"a.md": "unchanged"}  # and only once
    consistent(kb)
