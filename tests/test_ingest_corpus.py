"""End to end on real documents: several languages into a temporary library, then an unchanged re-run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from kb.service import KnowledgeBase
from tests.conftest import SMALL_DOCS, copy_docs


def test_real_documents_are_ingested_with_language_and_metadata(
    make_kb: Callable[..., KnowledgeBase], tmp_path: Path
) -> None:
    copy_docs(list(SMALL_DOCS.values()), tmp_path / "corpus")
    kb = make_kb()
    report = kb.ingest()
    assert report.totals()["added"] == len(SMALL_DOCS) and report.totals()["failed"] == 0
    by_file = {Path(f.path).name: f for f in report.files}
    for lang, name in SMALL_DOCS.items():
        assert by_file[name].language == lang, name
        assert by_file[name].chunks > 0

    docs = {d.file: d for d in kb.documents()}
    gematik = docs[SMALL_DOCS["de"]].meta
    assert (gematik.country, gematik.year) == ("DE", 2024)
    assert docs[SMALL_DOCS["it"]].meta.country == "IT"
    assert docs[SMALL_DOCS["fr"]].pages == 1

    point = next(kb.store.scroll())
    for key in ("doc_id", "file", "title", "page_start", "page_end", "language", "year", "country", "doc_type", "text"):
        assert key in point.payload
    assert kb.store.count() == sum(d.chunks for d in docs.values())

    again = kb.ingest()
    assert {f.status.value for f in again.files} == {"unchanged"}


def test_cli_ingest_json_contract(tmp_path: Path, make_settings: Callable, monkeypatch) -> None:
    from kb import cli
    from kb.settings import get_settings

    settings = make_settings()
    copy_docs([SMALL_DOCS["fr"]], tmp_path / "drop")
    monkeypatch.setenv("KB_HOME", str(settings.home))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["ingest", str(tmp_path / "drop"), "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [row] = data["files"]
    assert set(row) == {"path", "status", "pages", "ocr_pages", "language", "chunks", "error"}
    assert row["status"] == "added" and row["language"] == "fr"
    assert data["totals"]["added"] == 1
