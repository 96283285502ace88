"""Shared fixtures: settings in temporary homes, one embedding model per session, real corpus files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from index.embedder import Embedder
from kb.service import KnowledgeBase
from kb.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO.parent / "shared" / "corpus"

# Small real documents in several languages, for integration tests that must embed quickly.
SMALL_DOCS = {
    "fr": "fr_ANS_tableau-populations-RPPS.pdf",
    "en": "en_EC_Factsheet-cybersecurity-hospitals-healthcare-providers_2025.pdf",
    "it": "it_MinSalute_Piattaforma-Telemedicina-ed-Ecosistema-FSE.md",
    "de": "de_gematik_Leitfaden-Pseudonymisierung-ePA-Forschungsdatenzentrum_2024.md",
    "es": "es_AGESIC-Uruguay_Modelo-DNMA-Diccionario-Nacional-Medicamentos_v1.0.pdf",
}


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    if not SHARED_CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing at {SHARED_CORPUS} (tests read real documents from ../shared)")
    return SHARED_CORPUS


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Environment-derived settings (model cache, OCR...) that every temporary library starts from."""
    return Settings()


@pytest.fixture(scope="session")
def embedder(base_settings: Settings) -> Embedder:
    """One loaded embedding model for the whole session (loading costs ~10 s)."""
    emb = Embedder(base_settings)
    _ = emb.model
    return emb


@pytest.fixture
def make_settings(tmp_path: Path, base_settings: Settings) -> Callable[..., Settings]:
    """Settings for a fresh library in a temporary folder; keyword arguments override fields."""

    def factory(**overrides: object) -> Settings:
        home = Path(overrides.pop("home", tmp_path / "kbhome"))  # type: ignore[arg-type]
        values = base_settings.model_dump() | {
            "home": home,
            "corpus_dir": tmp_path / "corpus",
            "metadata_csv": tmp_path / "metadata.csv",
        }
        values |= overrides
        return Settings(**values)

    return factory


@pytest.fixture
def make_kb(make_settings: Callable[..., Settings], embedder: Embedder) -> Iterator[Callable[..., KnowledgeBase]]:
    """KnowledgeBase factory sharing the session's model; closes every instance afterwards."""
    made: list[KnowledgeBase] = []

    def factory(**overrides: object) -> KnowledgeBase:
        kb = KnowledgeBase(make_settings(**overrides))
        kb.__dict__["embedder"] = embedder
        made.append(kb)
        return kb

    yield factory
    for kb in made:
        kb.close()


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Run ``kb ARGS`` in-process on a library's home (the library is closed first: embedded Qdrant admits one
    holder); ``env`` sets more KB_* variables for the run. Returns typer's result."""
    from typer.testing import CliRunner

    from kb import cli
    from kb.settings import get_settings

    def run(kb: KnowledgeBase, *args: str, env: dict[str, str] | None = None) -> object:
        kb.close()
        for name in ("searcher", "answerer", "recentring"):
            kb.__dict__.pop(name, None)
        monkeypatch.setenv("KB_HOME", str(kb.settings.home))
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(cli.app, list(args))
        finally:
            get_settings.cache_clear()

    return run


def copy_docs(names: list[str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(SHARED_CORPUS / n, dest / n)) for n in names]


@pytest.fixture
def write_md(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a small generated Markdown document into the temporary drop folder."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / "corpus" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def tagged_library(make_kb: Callable[..., KnowledgeBase], tmp_path: Path) -> KnowledgeBase:
    """A fresh, tagged library of the Italian and German small documents (tests may change it)."""
    copy_docs([SMALL_DOCS["it"], SMALL_DOCS["de"]], tmp_path / "corpus")
    kb = make_kb()
    kb.ingest()
    return kb


@pytest.fixture(scope="session")
def small_library(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings, embedder: Embedder):
    """One library of the small real documents (5 languages), ingested once and shared read-only by tests."""
    root = tmp_path_factory.mktemp("small-library")
    copy_docs(list(SMALL_DOCS.values()), root / "corpus")
    values = base_settings.model_dump() | {
        "home": root / "kbhome",
        "corpus_dir": root / "corpus",
        "metadata_csv": root / "metadata.csv",
    }
    kb = KnowledgeBase(Settings(**values))
    kb.__dict__["embedder"] = embedder
    report = kb.ingest()
    assert report.totals()["failed"] == 0, report.as_json()
    yield kb
    kb.close()
