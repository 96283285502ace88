"""The evaluation harness's own arithmetic and relevance rules (the numbers in closing notes rest on them)."""

from __future__ import annotations

import pytest

from eval.metrics import QuestionScore, breakdown, mrr_at, ndcg_at, recall_at
from eval.retrieval import GoldAnswer, Question, corpus_relevant, covid_relevant, normalise
from kb.records import Hit


def test_ranking_metrics() -> None:
    flags = [False, False, True, True]
    assert recall_at(flags, 1) == 0 and recall_at(flags, 3) == 1
    assert mrr_at(flags) == pytest.approx(1 / 3)
    assert ndcg_at(flags, ideal_hits=1) == pytest.approx(0.5)  # 1/log2(4); a second copy adds nothing
    assert ndcg_at([True, True], ideal_hits=2) == pytest.approx(1.0)
    table = breakdown([
        QuestionScore(id="a", groups={"lang": "fr"}, relevant=[True]),
        QuestionScore(id="b", groups={"lang": "de"}, relevant=[False] * 10),
    ])  # fmt: skip
    assert table["all"].recall_at_10 == 0.5 and table["lang=fr"].mrr_at_10 == 1.0 and table["lang=de"].n == 1


def _hit(file: str, page: int, text: str) -> Hit:
    return Hit(chunk_id="c", doc_id="d", file=file, title="t", page=page, pages=(page, page), score=1.0, text=text)


def test_relevance_needs_the_gold_file_and_its_page_or_the_gold_span() -> None:
    q = Question(
        id="q", question="?", answers=[GoldAnswer(file="a.pdf", pages=[7])], answer_text="shall not exceed 10 years"
    )
    assert corpus_relevant(q, _hit("a.pdf", 7, "unrelated"))
    assert corpus_relevant(q, _hit("a.pdf", 6, "The duration shall not\nexceed 10 years."))
    assert not corpus_relevant(q, _hit("b.pdf", 7, "shall not exceed 10 years"))
    assert normalise("Inter-\noperable “Data”") == normalise("interoperable data")
    covid = Question(
        id="c", question="?", answer_text="Mother-to-child transmission is the main cause of infection in children"
    )
    assert covid_relevant(
        covid, _hit("x", 1, "Mother-to-child transmission (MTCT) is the main cause of HIV-1 infection in children")
    )
    assert not covid_relevant(covid, _hit("x", 1, "Transmission in adults is mostly sexual."))
