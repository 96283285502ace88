"""``kb doctor``: check that the registry and the index agree, and repair what a crash or a hand edit broke.

The registry is the truth about what should be indexed; the store holds what is. Checks:

- ``stuck_indexing``: documents left in ``indexing`` (a run died between their first and last point);
- ``missing_files``: registered paths whose file is gone, and documents no path carries any more;
- ``stale_points``: points of an indexed document beyond its chunks (left by an older chunking of the same bytes);
- ``point_count``: indexed documents whose points in the store are not exactly their chunks (0..n-1);
- ``orphan_points``: points whose ``doc_id`` is not a document the registry knows as indexed or indexing;
- ``not_indexed``: documents waiting for ``kb ingest`` (marked by an interrupted run or by a repair).

Repairs delete what cannot be trusted (partial, stale and orphan points) and mark damaged documents
``pending`` so the next ``kb ingest`` re-indexes them; doctor never embeds. A path whose folder is missing
altogether (an unmounted drive?) is reported but not forgotten. With a shared Qdrant server
(``KB_QDRANT_URL``) run doctor when no other process is ingesting: their documents in ``indexing`` look stuck.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from kb.registry import INDEXED, INDEXING

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

PENDING = "pending"
CHECKS = ("stuck_indexing", "missing_files", "stale_points", "point_count", "orphan_points", "not_indexed")


class Problem(BaseModel):
    check: str  # one of CHECKS
    detail: str  # what is wrong, for people
    doc_id: str = ""
    path: str = ""
    points: int = 0  # points involved (stored, orphaned)
    repaired: bool = False
    action: str = ""  # what the repair did, or what to do


class DoctorReport(BaseModel):
    checks: list[str] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    repairs: list[str] = Field(default_factory=list)
    repair: bool = False  # whether repairs were allowed
    documents: int = 0  # registry rows seen
    points: int = 0  # points in the store before any repair

    @property
    def clean(self) -> bool:
        """Nothing was wrong."""
        return not self.problems

    @property
    def outstanding(self) -> list[Problem]:
        """Problems still there after this run."""
        return [p for p in self.problems if not p.repaired]

    def as_json(self) -> dict:
        return self.model_dump() | {"clean": self.clean, "outstanding": len(self.outstanding)}


def run_doctor(kb: KnowledgeBase, repair: bool = False) -> DoctorReport:
    """Run every check on this knowledge base; with ``repair``, fix what can be fixed without embedding."""
    registry, store = kb.registry, kb.store
    report = DoctorReport(checks=list(CHECKS), repair=repair)
    documents = registry.documents()
    report.documents = len(documents)

    # One pass over the store: (point id, chunk position) per document; points without a doc_id are orphans.
    stored: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for point in store.scroll(None):
        position = point.payload.get("position")
        position = position if isinstance(position, int) else -1
        stored[str(point.payload.get("doc_id") or "")].append((point.id, position))
    report.points = sum(len(points) for points in stored.values())

    def fixed(problem: Problem, action: str) -> None:
        problem.repaired, problem.action = True, action
        report.repairs.append(f"{problem.doc_id or problem.path}: {action}")

    gone: set[str] = set()  # documents removed by a repair
    for doc in documents:
        points = stored.get(doc.doc_id, [])
        held = len(points)
        if doc.status == INDEXING:
            problem = Problem(
                check="stuck_indexing", doc_id=doc.doc_id, points=held,
                detail=f"{doc.file or doc.doc_id} was left in 'indexing' with {held} of its points written",
                action="run kb doctor --repair or kb ingest",
            )  # fmt: skip
            report.problems.append(problem)
            if repair:
                store.delete_doc(doc.doc_id)
                if doc.paths:
                    registry.set_status(doc.doc_id, PENDING, "interrupted; re-indexing")
                    fixed(problem, f"deleted {held} partial points; marked pending for the next kb ingest")
                else:
                    registry.delete_document(doc.doc_id)
                    gone.add(doc.doc_id)
                    fixed(problem, f"deleted {held} partial points and the registry row (no file carries it)")
            continue

        missing = [p for p in doc.paths if not os.path.exists(p)]
        for path in missing:
            folder_there = Path(path).parent.is_dir()
            problem = Problem(
                check="missing_files", doc_id=doc.doc_id, path=path,
                detail=f"file is gone: {path}" + ("" if folder_there else " (its folder is missing too)"),
                action="run kb doctor --repair or kb ingest on its folder"
                if folder_there else "folder missing (unmounted drive?): not repaired",
            )  # fmt: skip
            report.problems.append(problem)
            if repair and folder_there:
                registry.remove_path(path)
                fixed(problem, "forgot the path")
        left = [p for p in doc.paths if p not in missing or not Path(p).parent.is_dir()]
        if not left:
            problem = Problem(
                check="missing_files", doc_id=doc.doc_id, points=held,
                detail=f"no file carries {doc.meta.title or doc.doc_id} any more ({held} points in the index)",
                action="run kb doctor --repair to remove it (or kb ingest, which re-attaches a file it finds)",
            )  # fmt: skip
            report.problems.append(problem)
            if repair:
                store.delete_doc(doc.doc_id)
                registry.delete_document(doc.doc_id)
                gone.add(doc.doc_id)
                fixed(problem, f"deleted its {held} points and its registry row")
            continue

        if doc.status == INDEXED:
            found = sorted(pos for _, pos in points)
            extra = [pid for pid, pos in points if pos >= doc.chunks]
            if extra and found[: doc.chunks] == list(range(doc.chunks)):  # all chunks there, and more: stale ones
                problem = Problem(
                    check="stale_points", doc_id=doc.doc_id, points=len(extra),
                    detail=f"{doc.file}: {len(extra)} points beyond its {doc.chunks} chunks (an older chunking)",
                    action="run kb doctor --repair",
                )  # fmt: skip
                report.problems.append(problem)
                if repair:
                    store.delete_ids(sorted(extra))
                    fixed(problem, f"deleted {len(extra)} stale points; its {doc.chunks} chunks stay indexed")
            elif found != list(range(doc.chunks)):
                problem = Problem(
                    check="point_count", doc_id=doc.doc_id, points=held,
                    detail=f"{doc.file}: {held} points in the index, the registry expects {doc.chunks} chunks"
                    + ("" if held != doc.chunks else " (positions do not match)"),
                    action="run kb doctor --repair, then kb ingest",
                )  # fmt: skip
                report.problems.append(problem)
                if repair:
                    store.delete_doc(doc.doc_id)
                    registry.set_status(doc.doc_id, PENDING, f"damaged index ({held}/{doc.chunks} points); re-index")
                    fixed(problem, f"deleted its {held} points; marked pending for the next kb ingest")
        else:
            detail = f"{doc.file}: status '{doc.status}'" + (f" ({doc.error})" if doc.error else "")
            report.problems.append(
                Problem(check="not_indexed", doc_id=doc.doc_id, detail=detail, action="run kb ingest to index it")
            )

    known = {d.doc_id for d in documents if d.status in (INDEXED, INDEXING) and d.doc_id not in gone}
    by_id = {d.doc_id: d for d in documents}
    for doc_id, orphans in sorted(stored.items()):
        if doc_id in known or doc_id in gone:
            continue
        ids = [pid for pid, _ in orphans]
        row = by_id.get(doc_id)
        why = "unknown to the registry" if row is None else f"a document in status '{row.status}'"
        problem = Problem(
            check="orphan_points", doc_id=doc_id, points=len(ids),
            detail=f"{len(ids)} points belong to {why}" if doc_id else f"{len(ids)} points carry no doc_id",
            action="run kb doctor --repair",
        )  # fmt: skip
        report.problems.append(problem)
        if repair:
            store.delete_ids(sorted(ids))
            fixed(problem, f"deleted {len(ids)} orphan points")
    return report
