"""A run killed with SIGKILL mid-embedding or mid-write is repaired by the next run; doctor finds and repairs damage.

The ingest runs in a real subprocess (real model, embedded Qdrant on disk). It prints a ``stage`` line at each
step, with flush, and the test kills it when the line for the wanted moment arrives:

- while embedding: the line printed as the embedding of the second document starts (it takes seconds);
- while writing to Qdrant: the line printed after the second point of the second document's upsert is committed,
  the process then pausing there until it is killed (the rest of that batch is never written).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from index.sparse import SparseVector
from index.store import StoredPoint
from ingest.chunker import chunk_id
from kb.records import FileStatus, SearchFilters
from kb.service import KnowledgeBase
from tests.conftest import REPO, SMALL_DOCS, copy_docs
from tests.integrity import assert_registry_matches_index

DOCS = sorted([SMALL_DOCS["de"], SMALL_DOCS["en"]])  # ingested in this (path) order: 10 and 4 chunks

CHILD = r"""
import os, sys, time
from kb.service import KnowledgeBase
from kb.settings import Settings
from qdrant_client.local import persistence

mode, target, point_no = os.environ["CRASH_AT"].split(":")  # e.g. writing:<file name>:2
state = {"file": "", "written": 0}

def say(*parts):
    print("stage", *parts, flush=True)

def progress(file, stage, done, total):
    if stage == "reading":
        state.update(file=file, written=0)
    say(stage, f"{done}/{total}", file)

kb = KnowledgeBase(Settings())
real_encode = kb.embedder.encode_passages_with_spans

def encode_passages_with_spans(texts, spans):
    say("embedding-start", len(texts), state["file"])
    return real_encode(texts, spans)

kb.embedder.encode_passages_with_spans = encode_passages_with_spans
real_persist = persistence.CollectionPersistence.persist

def persist(self, point):
    real_persist(self, point)  # one point, committed to the embedded store's SQLite file
    state["written"] += 1
    if mode == "writing" and state["file"] == target and state["written"] == int(point_no):
        say("writing", state["written"], state["file"])
        time.sleep(600)

persistence.CollectionPersistence.persist = persist
kb.ingest(progress=progress)
say("done")
"""


def run_and_kill(
    env: dict[str, str], crash_at: str, wanted: str, file: str, log: Path, timeout: float = 300
) -> list[str]:
    """Start the ingest; SIGKILL it when a stage line ``wanted ... file`` arrives. Returns the lines it printed."""
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=REPO,
            env=env | {"CRASH_AT": crash_at},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(wanted) and line.rstrip("\n").endswith(file):
                proc.send_signal(signal.SIGKILL)
                break
            assert time.monotonic() < deadline, f"no '{wanted}' line in time: {lines}"
        else:
            raise AssertionError(f"the ingest ended before '{wanted}': {lines}\n{log.read_text()[-3000:]}")
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return lines


def child_env(settings_home: Path, corpus: Path, tmp_path: Path) -> dict[str, str]:
    return os.environ | {
        "KB_HOME": str(settings_home),
        "KB_CORPUS_DIR": str(corpus),
        "KB_METADATA_CSV": str(tmp_path / "metadata.csv"),
        "KB_FRAMEWORKS_FILE": str(tmp_path / "no-frameworks.yaml"),  # tagging is not what this tests
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def test_sigkill_while_embedding_and_while_writing_is_repaired_by_the_next_run(
    make_kb: Callable[..., KnowledgeBase], tmp_path: Path, shared_corpus: Path
) -> None:
    corpus = tmp_path / "corpus"
    copy_docs(DOCS, corpus)
    home = tmp_path / "kbhome"
    # The write-time kill hooks qdrant-client's per-point local persistence, so this runs on qdrant-local;
    # qdrant-edge writes a whole batch at once and has no point-level hook to stop at.
    env = child_env(home, corpus, tmp_path) | {"KB_STORE_ENGINE": "qdrant-local"}
    local = {"store_engine": "qdrant-local"}

    # (a) killed while embedding the second document: the first is complete, the second registered, no points.
    lines = run_and_kill(env, "embedding:-:0", "stage embedding-start", DOCS[1], tmp_path / "run-a.log")
    written = [ln.split()[2].split("/") for ln in lines if ln.startswith("stage embedding ") and ln.endswith(DOCS[0])]
    assert written and written[-1][0] == written[-1][1]  # the first document's points were all written
    kb = make_kb(home=home, frameworks_file=tmp_path / "no-frameworks.yaml", **local)
    assert len(kb.documents()) == 2
    [first] = [d for d in kb.documents() if d.status == "indexed"]
    [second] = [d for d in kb.documents() if d.status != "indexed"]
    assert first.file == DOCS[0]
    assert len(kb.store.point_ids(first.doc_id)) == first.chunks > 0
    assert second.status == "indexing" and not kb.store.point_ids(second.doc_id)
    stuck = kb.doctor()
    assert [p.check for p in stuck.problems] == ["stuck_indexing"] and stuck.problems[0].doc_id == second.doc_id
    kb.close()

    # (b) the next run is killed while writing the second document's points: 2 of its batch are in the store.
    run_and_kill(env, f"writing:{DOCS[1]}:2", "stage writing 2", DOCS[1], tmp_path / "run-b.log")
    kb = make_kb(home=home, frameworks_file=tmp_path / "no-frameworks.yaml", **local)
    docs = {d.file: d for d in kb.documents()}
    assert docs[DOCS[0]].status == "indexed" and len(kb.store.point_ids(docs[DOCS[0]].doc_id)) == docs[DOCS[0]].chunks
    partial = kb.registry.by_sha(next(d.sha256 for d in kb.documents() if d.status == "indexing"))
    assert partial is not None and len(kb.store.point_ids(partial.doc_id)) == 2
    found = kb.doctor()
    assert {(p.check, p.doc_id, p.points) for p in found.problems} == {("stuck_indexing", partial.doc_id, 2)}

    # The next run repairs it: no duplicate chunks, no orphans, every indexed document has exactly its chunks.
    report = kb.ingest()
    statuses = {Path(f.path).name: f.status for f in report.files}
    assert statuses == {DOCS[0]: FileStatus.UNCHANGED, DOCS[1]: FileStatus.ADDED}
    assert len(kb.documents()) == 2
    assert_registry_matches_index(kb)  # includes a clean kb doctor


def test_doctor_finds_and_repairs_a_damaged_index(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path], tmp_path: Path
) -> None:
    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")
    long_text = "".join(
        f"## Section {i}\n\nHospital {i} exchanges discharge letters with general practitioners through the national "
        f"health information exchange, using HL7 FHIR profiles agreed in {2000 + i}.\n\n"
        for i in range(30)
    )
    write_md("damaged.md", "# Interoperability plan\n\n" + long_text)
    write_md("healthy.md", "# Telemedicine\n\nRemote consultations are reimbursed like visits in person.\n")
    write_md("gone.md", "# Old circular\n\nThis circular on fax prescriptions was withdrawn in 2019.\n")
    kb.ingest()
    assert kb.doctor().clean
    damaged, gone, healthy = (kb.registry.by_file(n) for n in ("damaged.md", "gone.md", "healthy.md"))
    assert damaged and gone and healthy and damaged.chunks >= 3

    # Damage: lose some points of one document, leave a stale point (an older chunking's position) on another,
    # plant an orphan point, delete a file behind the index's back.
    lost = sorted(kb.store.point_ids(damaged.doc_id))[:2]
    kb.store.delete_ids(lost)
    template = next(iter(kb.store.scroll(SearchFilters(doc_ids=[healthy.doc_id]), with_dense=True)))
    payload = {k: v for k, v in template.payload.items() if k != "_dense"}
    vector, sparse = template.payload["_dense"], SparseVector(indices=[1], values=[1.0])
    orphan = StoredPoint(
        id="00000000-0000-4000-8000-000000000001", dense=vector, sparse=sparse, payload=payload | {"doc_id": "feedface"}
    )
    stale_id = chunk_id(healthy.sha256, healthy.chunks)
    stale = StoredPoint(id=stale_id, dense=vector, sparse=sparse, payload=payload | {"position": healthy.chunks})
    kb.store.upsert([orphan, stale])
    (tmp_path / "corpus" / "gone.md").unlink()

    found = kb.doctor(repair=False)
    assert sorted((p.check, p.doc_id, p.points) for p in found.problems) == [
        ("missing_files", gone.doc_id, 0),  # its path
        ("missing_files", gone.doc_id, gone.chunks),  # and the document no file carries any more
        ("orphan_points", "feedface", 1),
        ("point_count", damaged.doc_id, damaged.chunks - 2),
        ("stale_points", healthy.doc_id, 1),
    ]
    assert not any(p.repaired for p in found.problems) and found.repairs == []
    assert len(kb.store.point_ids(damaged.doc_id)) == damaged.chunks - 2  # check-only changed nothing

    fixed = kb.doctor(repair=True)
    assert fixed.outstanding == [] and len(fixed.repairs) == len(fixed.problems) == len(found.problems)
    assert kb.store.point_ids(damaged.doc_id) == set()  # stale remainder gone, marked for re-indexing
    assert kb.registry.get(damaged.doc_id).status == "pending"  # type: ignore[union-attr]
    assert kb.registry.get(gone.doc_id) is None and not kb.store.point_ids(gone.doc_id)
    assert orphan.id not in kb.store.point_ids() and stale_id not in kb.store.point_ids()
    assert len(kb.store.point_ids(healthy.doc_id)) == healthy.chunks  # kept: no re-embedding needed

    waiting = kb.doctor()
    assert [(p.check, p.doc_id) for p in waiting.problems] == [("not_indexed", damaged.doc_id)]

    report = kb.ingest()
    statuses = {Path(f.path).name: f.status for f in report.files}
    assert statuses == {"damaged.md": FileStatus.UPDATED, "healthy.md": FileStatus.UNCHANGED}
    assert_registry_matches_index(kb)  # includes a clean kb doctor


def test_kb_doctor_command_exit_codes_and_json(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path], tmp_path: Path
) -> None:
    """The CLI: problems found -> exit 1 with JSON; --repair -> exit 0 and says what it did."""
    import json

    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")
    write_md("a.md", "# Telemedicine\n\nRemote consultations are reimbursed like visits in person.\n")
    kb.ingest()
    doc = kb.documents()[0]
    kb.store.delete_ids(sorted(kb.store.point_ids(doc.doc_id)))
    kb.close()
    env = child_env(tmp_path / "kbhome", tmp_path / "corpus", tmp_path)
    kb_cli = [str(Path(sys.executable).parent / "kb"), "doctor"]

    check = subprocess.run([*kb_cli, "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1, check.stderr
    data = json.loads(check.stdout)
    assert data["clean"] is False and data["problems"][0]["check"] == "point_count"
    assert data["problems"][0]["doc_id"] == doc.doc_id and data["repairs"] == []

    wide = env | {"COLUMNS": "200"}
    repair = subprocess.run([*kb_cli, "--repair"], cwd=REPO, env=wide, capture_output=True, text=True, timeout=120)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert "point_count" in repair.stdout and "marked pending for the next kb ingest" in repair.stdout
    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")
    assert kb.registry.get(doc.doc_id).status == "pending"  # type: ignore[union-attr]
