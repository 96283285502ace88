"""Helpers for the app tests: a small real library in a temporary folder, built quickly."""

from __future__ import annotations

import shutil
from pathlib import Path

from index.embedder import Embedder
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import copy_docs


def seed_tagger_cache(basetemp: Path, home: Path) -> int:
    """Copy the tagger's training-set embeddings that another library of this test run already computed.

    They are cached per KB_HOME under a name derived from the model and the training texts, so a copy is used
    only when it is exactly right; without one the tagger embeds its ~190 training texts (a minute on a busy
    2-core machine)."""
    target = home / "cache"
    copied = 0
    for found in sorted(basetemp.glob("*/*/cache/alignment-*.npy")):
        target.mkdir(parents=True, exist_ok=True)
        if not (target / found.name).exists():
            shutil.copy(found, target / found.name)
            copied += 1
    return copied


def build_library(
    root: Path, names: list[str], base_settings: Settings, embedder: Embedder, basetemp: Path, **overrides: object
) -> KnowledgeBase:
    """A library of these shared-corpus documents under ``root``, ingested with the session's model."""
    copy_docs(names, root / "corpus")
    values = base_settings.model_dump() | {
        "home": root / "kbhome",
        "corpus_dir": root / "corpus",
        "metadata_csv": root / "corpus" / "metadata.csv",
    }
    settings = Settings(**(values | overrides))
    seed_tagger_cache(basetemp, settings.home)
    kb = KnowledgeBase(settings)
    kb.__dict__["embedder"] = embedder
    report = kb.ingest()
    assert report.totals()["added"] == len(names), report.as_json()
    return kb
