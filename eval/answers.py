"""`kb eval answers`: citation precision, answer recall, abstention on no-answer questions, false abstention.

A citation is correct when its file and page are gold for the question, or its quote holds the gold span.
The evidence score of every question is kept, with how far its own bar sat from ``abstain_threshold`` (the
cross-lingual offset, the unknown-name margin), so the same run also shows how each abstention threshold would
trade abstention against false abstention (that table is how ``abstain_threshold`` was chosen).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from eval.retrieval import (
    CORPUS_JUDGMENTS,
    CORPUS_QUESTIONS,
    NO_ANSWER_QUESTIONS,
    Question,
    gold_for,
    quotes,
    read_questions,
)
from kb.records import Answer, Citation
from kb.service import KnowledgeBase


def citation_correct(q: Question, c: Citation) -> bool:
    return gold_for(q, c.file, c.page, c.quote)


def answered(q: Question, a: Answer) -> bool:
    """The answer holds the gold span, or cites a gold page."""
    return any(citation_correct(q, c) for c in a.citations) or quotes(a.answer, q.answer_text)


class ThresholdRow(BaseModel):
    threshold: float
    abstain_no_answer: float
    false_abstention: float


class AnswerEval(BaseModel):
    mode: str
    gold: str = "writer"  # as in RetrievalEval
    questions: int
    no_answer_questions: int
    citation_precision: float
    answer_recall: float
    abstain_no_answer: float
    false_abstention: float
    dropped_claims: int
    threshold: float
    sweep: list[ThresholdRow] = Field(default_factory=list)
    per_question: list[dict] = Field(default_factory=list)


def evaluate_answers(
    kb: KnowledgeBase, mode: str = "evidence", judgments: Path | None = CORPUS_JUDGMENTS
) -> AnswerEval:
    answerable = read_questions(CORPUS_QUESTIONS, judgments)
    unanswerable = read_questions(NO_ANSWER_QUESTIONS)
    correct = cited = hit = abstained = dropped = 0
    rows, scores_yes, scores_no = [], [], []
    threshold = kb.settings.abstain_threshold

    def margin(a: Answer) -> float:
        """Evidence score above this question's own bar, were the threshold 0 (so the sweep keeps the offsets)."""
        return a.coverage.get("best_evidence_score", 0.0) - (a.coverage.get("abstain_below", threshold) - threshold)

    for q in answerable:
        a = kb.ask(q.question, mode=mode)
        scores_yes.append(margin(a))
        dropped += a.dropped_claims
        if a.abstained:
            abstained += 1
        else:
            flags = [citation_correct(q, c) for c in a.citations]
            correct, cited = correct + sum(flags), cited + len(flags)
            hit += answered(q, a)
        rows.append({"id": q.id, "abstained": a.abstained, "citations": len(a.citations),
                     "correct": sum(citation_correct(q, c) for c in a.citations), "answered": answered(q, a),
                     "score": scores_yes[-1]})  # fmt: skip
    abstained_no = 0
    for q in unanswerable:
        a = kb.ask(q.question, mode=mode)
        scores_no.append(margin(a))
        abstained_no += a.abstained
        rows.append({"id": q.id, "abstained": a.abstained, "score": scores_no[-1]})
    yes, no = np.asarray(scores_yes), np.asarray(scores_no)
    sweep = [
        ThresholdRow(threshold=round(float(t), 3), abstain_no_answer=round(float((no < t).mean()), 3),
                     false_abstention=round(float((yes < t).mean()), 3))
        for t in np.arange(0.80, 0.92, 0.005)
    ]  # fmt: skip
    return AnswerEval(
        mode=mode, gold="pooled" if judgments else "writer", questions=len(answerable),
        no_answer_questions=len(unanswerable),
        citation_precision=round(correct / cited, 4) if cited else 0.0,
        answer_recall=round(hit / len(answerable), 4), abstain_no_answer=round(abstained_no / len(unanswerable), 4),
        false_abstention=round(abstained / len(answerable), 4), dropped_claims=dropped,
        threshold=kb.settings.abstain_threshold, sweep=sweep, per_question=rows,
    )  # fmt: skip
