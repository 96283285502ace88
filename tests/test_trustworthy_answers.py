"""Cross-lingual evidence without same-language bias, and answers only where a sentence answers (real documents)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.embedder import Embedder
from kb.records import AnswerOutcome
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import copy_docs

WHO_STRATEGY = "en_WHO_Global-strategy-on-digital-health-2020-2025_docling-conversion.md"
FRENCH_DOCTRINE = "fr_ANS-DNS_doctrine-numerique-en-sante_2022.pdf"
DEFINITION = "Comment la stratégie mondiale de l'OMS définit-elle la santé numérique ?"
NEAR_MISS = "Quel est le montant total, en milliards d'euros, consacré au volet numérique du Ségur de la santé ?"


@pytest.fixture(scope="module")
def strategy_library(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings, embedder: Embedder):
    """The WHO global strategy (English) next to the French national doctrine, which discusses the same field."""
    root = tmp_path_factory.mktemp("strategy-library")
    copy_docs([WHO_STRATEGY, FRENCH_DOCTRINE], root / "corpus")
    values = base_settings.model_dump() | {"home": root / "kbhome", "corpus_dir": root / "corpus",
                                           "metadata_csv": root / "metadata.csv", "centring": True}  # fmt: skip
    kb = KnowledgeBase(Settings(**values))
    kb.__dict__["embedder"] = embedder
    assert kb.ingest().totals()["failed"] == 0
    yield kb
    kb.close()


def test_a_french_question_finds_the_english_page_that_answers_it_first(strategy_library: KnowledgeBase) -> None:
    hits = strategy_library.search(DEFINITION, k=10).hits
    assert hits[0].file == WHO_STRATEGY, [(h.file, h.page) for h in hits]
    french = [i for i, h in enumerate(hits) if h.language == "fr"]
    english = [i for i, h in enumerate(hits) if h.file == WHO_STRATEGY]
    assert english and (not french or english[0] < french[0])
    answer = strategy_library.ask(DEFINITION)
    assert answer.outcome == AnswerOutcome.ANSWER and answer.citations[0].file == WHO_STRATEGY


def test_a_near_miss_question_is_not_answered_under_the_answerability_gate(strategy_library: KnowledgeBase) -> None:
    answer = strategy_library.ask(NEAR_MISS, strict=True)  # the doctrine covers the Ségur numérique, but no total
    assert answer.abstained and answer.outcome != AnswerOutcome.ANSWER
    assert answer.why


def test_cli_json_says_which_outcome_and_why(strategy_library: KnowledgeBase, run_cli, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    lines = [DEFINITION, "Which law governs telehealth in Kazakhstan?"]
    queries.write_text("".join(json.dumps({"id": str(i), "question": q}) + "\n" for i, q in enumerate(lines)))
    result = run_cli(strategy_library, "ask", "--queries-file", str(queries), "--json", env={"KB_CENTRING": "true"})
    assert result.exit_code == 0, result.output
    answered, absent = (json.loads(line) for line in result.stdout.splitlines())
    assert answered["outcome"] == "answer" and not answered["abstained"] and answered["confidence"] > 0
    assert absent["outcome"] == "not-in-library" and "Kazakhstan" in absent["why"]


def test_cli_strict_does_not_answer_a_near_miss(strategy_library: KnowledgeBase, run_cli) -> None:
    result = run_cli(strategy_library, "ask", NEAR_MISS, "--strict", "--json", env={"KB_CENTRING": "true"})
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["abstained"] and answer["outcome"] in {"closest-evidence", "not-in-library"} and answer["why"]
