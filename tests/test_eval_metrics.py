"""The evaluation harness's own arithmetic and relevance rules (the numbers in closing notes rest on them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.metrics import QuestionScore, breakdown, mrr_at, ndcg_at, recall_at
from eval.retrieval import (
    CORPUS_JUDGMENTS,
    CORPUS_QUESTIONS,
    GoldAnswer,
    Question,
    corpus_relevant,
    covid_relevant,
    normalise,
    read_judgments,
    read_questions,
)
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


def test_pooled_judgments_join_the_gold_pages(tmp_path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": "?", "answers": [{"file": "a.pdf", "pages": [7]}],
                                     "answer_text": "shall not exceed 10 years"}) + "\n")  # fmt: skip
    judged = tmp_path / "j.jsonl"
    judged.write_text("\n".join(json.dumps(j) for j in [
        {"id": "q1", "file": "b.pdf", "page": 3, "relevant": True, "evidence": "ten years at most"},
        {"id": "q1", "file": "b.pdf", "page": 4, "relevant": False},
        {"id": "q-gone", "file": "c.pdf", "page": 1, "relevant": True, "evidence": "x"},
    ]))  # fmt: skip
    (writer,) = read_questions(questions)
    (pooled,) = read_questions(questions, judged)
    assert not corpus_relevant(writer, _hit("b.pdf", 3, "Permits last ten years at most."))
    assert corpus_relevant(pooled, _hit("b.pdf", 3, "Permits last ten years at most."))
    assert not corpus_relevant(pooled, _hit("b.pdf", 4, "Permits are renewable."))
    assert corpus_relevant(pooled, _hit("a.pdf", 7, "unrelated"))


def test_judgments_file_points_at_real_questions_and_pages(shared_corpus: Path, base_settings) -> None:
    """Every judged-relevant page really holds its evidence span, read by our own PDF/text readers."""
    from ingest.readers import read_pages

    questions = {q.id: q for q in read_questions(CORPUS_QUESTIONS)}
    judgments = read_judgments(CORPUS_JUDGMENTS)
    assert judgments, "the pooled judgments are part of the evaluation data"
    settings = base_settings.model_copy(update={"ocr_enabled": False})
    pages: dict[str, dict[int, str]] = {}
    for j in judgments:
        assert j.id in questions and (shared_corpus / j.file).exists()
        writer_pages = {(g.file, p) for g in questions[j.id].answers for p in g.pages}
        assert (j.file, j.page) not in writer_pages, "a judged page is one the question writer did not list"
        if not j.relevant:
            continue
        assert 10 <= len(j.evidence) <= 300
        if j.file not in pages:
            read = read_pages(shared_corpus / j.file, settings)[0]
            pages[j.file] = {p.number: " ".join(p.text.split()) for p in read}
        text = pages[j.file][j.page]
        if text:  # pages without a text layer were judged on their OCR text
            assert " ".join(j.evidence.split()) in text, (j.id, j.file, j.page)


def test_pool_lists_only_unjudged_pages_with_their_text(small_library, shared_corpus: Path) -> None:
    from eval.pooling import unjudged_pages

    rows = unjudged_pages(small_library, shared_corpus, k=5, only={"q001", "q064"})  # q064: mostly judged
    questions = {q.id: q for q in read_questions(CORPUS_QUESTIONS, CORPUS_JUDGMENTS)}
    judged = {(j.id, j.file, j.page) for j in read_judgments(CORPUS_JUDGMENTS)}
    assert rows and {r["id"] for r in rows} <= {"q001", "q064"}
    for r in rows:
        gold = {(g.file, p) for g in questions[r["id"]].answers for p in g.pages}
        assert (r["file"], r["page"]) not in gold and (r["id"], r["file"], r["page"]) not in judged
        assert r["page_text"].strip() and r["sources"] and r["answer_text"] == questions[r["id"]].answer_text
