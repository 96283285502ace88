"""Helpers for the app tests: a small real library in a temporary folder, built quickly."""

from __future__ import annotations

from pathlib import Path

from index.embedder import Embedder
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import copy_docs


def build_library(
    root: Path, names: list[str], base_settings: Settings, embedder: Embedder, **overrides: object
) -> KnowledgeBase:
    """A library of these shared-corpus documents under ``root``, ingested with the session's model."""
    copy_docs(names, root / "corpus")
    values = base_settings.model_dump() | {
        "home": root / "kbhome",
        "corpus_dir": root / "corpus",
        "metadata_csv": root / "corpus" / "metadata.csv",
    }
    settings = Settings(**(values | overrides))
    kb = KnowledgeBase(settings)
    kb.__dict__["embedder"] = embedder
    report = kb.ingest()
    assert report.totals()["added"] == len(names), report.as_json()
    return kb
