"""Two processes on one embedded index; one process that ingests and searches at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kb.records import FileStatus
from kb.service import KnowledgeBase
from tests.conftest import REPO
from tests.integrity import assert_registry_matches_index

HOLDER = r"""
import sys
from kb.service import KnowledgeBase
from kb.settings import Settings

kb = KnowledgeBase(Settings())
print("holding", kb.store.count(), flush=True)  # the embedded index is open (and locked) from here
sys.stdin.read()  # until the test closes our stdin
kb.close()
print("released", flush=True)
"""

TOPICS = [
    ("telemedicine", "Remote video consultations are reimbursed like visits in person"),
    ("prescriptions", "Electronic prescriptions are sent from the doctor to any pharmacy the patient chooses"),
    ("records", "Patients read their own health record online and see who accessed it"),
    ("interoperability", "Hospitals exchange discharge letters as HL7 FHIR documents with general practitioners"),
    ("cybersecurity", "Every hospital reports security incidents to the national authority within 24 hours"),
]


def markdown(topic: str, sentence: str, sections: int = 4) -> str:
    body = "".join(f"## {topic.title()} {i}\n\n{sentence} (measure {i}, region {i * 7}).\n\n" for i in range(sections))
    return f"# {topic.title()}\n\n{body}"


def env_for(tmp_path: Path) -> dict[str, str]:
    return os.environ | {
        "KB_HOME": str(tmp_path / "kbhome"),
        "KB_CORPUS_DIR": str(tmp_path / "corpus"),
        "KB_METADATA_CSV": str(tmp_path / "metadata.csv"),
        "KB_FRAMEWORKS_FILE": str(tmp_path / "no-frameworks.yaml"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def test_kb_ingest_says_index_busy_while_another_process_holds_it(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write_md("telemedicine.md", markdown(*TOPICS[0]))
    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")
    kb.ingest()
    before = {d.doc_id: d.chunks for d in kb.documents()}
    points_before = kb.store.point_ids()
    kb.close()
    write_md("prescriptions.md", markdown(*TOPICS[1]))  # waiting to be ingested

    env = env_for(tmp_path)
    kb_cli = str(Path(sys.executable).parent / "kb")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().split() == ["holding", str(len(points_before))]
        for command in (["ingest"], ["doctor"]):
            busy = subprocess.run([kb_cli, *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
            message = " ".join(busy.stderr.split())
            assert busy.returncode == 3, f"{command}: rc {busy.returncode}\n{busy.stdout}\n{busy.stderr}"
            assert "Index busy" in message and "open in another process" in message, message
            assert busy.stdout == "", command  # no report: nothing was done
        holder.stdin.close()
        assert holder.stdout.readline().strip() == "released"
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.wait(timeout=30)

    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")
    assert {d.doc_id: d.chunks for d in kb.documents()} == before  # the refused ingest touched nothing
    assert kb.store.point_ids() == points_before
    assert_registry_matches_index(kb)
    report = kb.ingest()  # the index is free again
    assert {Path(f.path).name: f.status for f in report.files} == {
        "telemedicine.md": FileStatus.UNCHANGED,
        "prescriptions.md": FileStatus.ADDED,
    }
    assert_registry_matches_index(kb)


def test_searches_keep_answering_while_another_thread_ingests(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path], tmp_path: Path
) -> None:
    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")
    write_md("telemedicine.md", markdown(*TOPICS[0]))
    kb.ingest()
    for topic, sentence in TOPICS[1:]:
        write_md(f"{topic}.md", markdown(topic, sentence, sections=40))  # a few chunks each: a long ingest

    errors: list[BaseException] = []
    ingest_done = threading.Event()
    window: dict[str, float] = {}

    def ingest() -> None:
        window["start"] = time.monotonic()
        try:
            report = kb.ingest()
            assert report.totals()["added"] == len(TOPICS) - 1, report.as_json()
        except BaseException as exc:
            errors.append(exc)
        finally:
            window["end"] = time.monotonic()
            ingest_done.set()

    searches: list[tuple[float, float, int]] = []  # (start, end, hits)

    def search() -> None:
        queries = ["video consultation reimbursement", "téléconsultation remboursée", "FHIR discharge letters"]
        i = 0
        while not ingest_done.is_set():
            started = time.monotonic()
            try:
                result = kb.search(queries[i % len(queries)], k=5)
            except BaseException as exc:
                errors.append(exc)
                return
            searches.append((started, time.monotonic(), len(result.hits)))
            i += 1

    threads = [threading.Thread(target=ingest), threading.Thread(target=search)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    during = [s for s in searches if s[0] >= window["start"] and s[1] <= window["end"]]
    assert len(during) >= 3, (len(searches), window)
    assert all(hits > 0 for _, _, hits in searches)  # the document indexed before was always found
    assert_registry_matches_index(kb)


def test_bm25_terms_are_the_same_when_threads_compute_them_at_once() -> None:
    """Stemmers keep state: threads sharing one garble each other's stems (wrong BM25 vectors) or crash."""
    from index.sparse import SparseEncoder

    encoder = SparseEncoder()
    texts = {
        "en": "Hospitals are reporting cybersecurity incidents and regulations require notifications. " * 10,
        "fr": "Les établissements de santé transmettent les ordonnances électroniques aux pharmacies. " * 10,
        "de": "Die Krankenhäuser übermitteln Entlassbriefe an die niedergelassenen Ärztinnen und Ärzte. " * 10,
    }
    expected = {lang: encoder.terms(text, lang) for lang, text in texts.items()}
    failures: list[str] = []

    def work(lang: str) -> None:
        for _ in range(30):
            try:
                got = encoder.terms(texts[lang], lang)
            except Exception as exc:
                failures.append(f"{lang}: {type(exc).__name__}: {exc}")
                return
            if got != expected[lang]:
                failures.append(f"{lang}: different terms")
                return

    threads = [threading.Thread(target=work, args=(lang,)) for lang in [*texts, *texts]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert failures == []
