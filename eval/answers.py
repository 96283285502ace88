"""`kb eval answers`: outcomes, citation precision and cited pages, per question set, language and type.

A citation is correct when its file and page are gold for the question, or its quote holds the gold span. Only
the "answer" outcome counts as answering; "closest evidence" and "not in the library" count as abstaining. Two
rows: the tuning questions (which chose the answerability model and its bar) and the held-apart questions
(written before tuning, never used to choose anything), so a number is never reported only where it was tuned.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from eval.retrieval import (
    CORPUS_JUDGMENTS,
    CORPUS_QUESTIONS,
    EVAL_DATA,
    HELDOUT_QUESTIONS,
    NO_ANSWER_QUESTIONS,
    SAMEFACT_QUESTIONS,
    Question,
    gold_for,
    quotes,
    read_questions,
)
from kb.records import Answer, Citation
from kb.service import KnowledgeBase

NEAR_MISS_QUESTIONS = EVAL_DATA / "near_miss_questions.jsonl"


def citation_correct(q: Question, c: Citation) -> bool:
    return gold_for(q, c.file, c.page, c.quote)


def answered(q: Question, a: Answer) -> bool:
    """The answer holds the gold span, or cites a gold page."""
    return any(citation_correct(q, c) for c in a.citations) or quotes(a.answer, q.answer_text)


class GroupScore(BaseModel):
    n: int
    cited_correctly: float  # answered, citing a page that holds the answer
    unanswered: float  # closest evidence or not in the library


class SetScore(BaseModel):
    name: str
    questions: int
    no_answer_questions: int
    citation_precision: float
    cited_correctly: float
    cross_lingual_cited_correctly: float
    unanswered: float
    abstain_no_answer: float
    outcomes_answerable: dict[str, int]
    outcomes_no_answer: dict[str, int]
    groups: dict[str, GroupScore] = Field(default_factory=dict)
    ask_ms_p50: float = 0.0


class AnswerEval(BaseModel):
    mode: str
    gold: str = "writer"
    threshold: float
    sets: list[SetScore]
    per_question: list[dict] = Field(default_factory=list)


def _read(paths: list[Path], judgments: Path | None) -> list[Question]:
    return [q for p in paths if p.exists() for q in read_questions(p, judgments)]


def score_set(
    kb: KnowledgeBase, name: str, answerable: list[Question], unanswerable: list[Question], mode: str, rows: list
) -> SetScore:
    correct = cited = 0
    by_group: dict[str, list[tuple[bool, bool]]] = {}
    outcomes_yes: Counter = Counter()
    outcomes_no: Counter = Counter()
    timings = []
    for q in answerable:
        started = time.perf_counter()
        a = kb.ask(q.question, mode=mode)
        timings.append(time.perf_counter() - started)
        outcomes_yes[a.outcome.value] += 1
        good = False
        if not a.abstained:
            flags = [citation_correct(q, c) for c in a.citations]
            correct, cited = correct + sum(flags), cited + len(flags)
            good = answered(q, a)
        for key in ("all", f"type={q.type}", f"lang={q.lang}"):
            by_group.setdefault(key, []).append((good, a.abstained))
        rows.append({"set": name, "id": q.id, "outcome": a.outcome.value, "confidence": a.confidence,
                     "cited_correctly": good})  # fmt: skip
    for q in unanswerable:
        started = time.perf_counter()
        a = kb.ask(q.question, mode=mode)
        timings.append(time.perf_counter() - started)
        outcomes_no[a.outcome.value] += 1
        rows.append({"set": name, "id": q.id, "outcome": a.outcome.value, "confidence": a.confidence})
    groups = {
        key: GroupScore(n=len(v), cited_correctly=round(sum(g for g, _ in v) / len(v), 3),
                        unanswered=round(sum(u for _, u in v) / len(v), 3))
        for key, v in sorted(by_group.items())
    }  # fmt: skip
    cross = groups.get("type=cross-lingual")
    timings.sort()
    return SetScore(
        name=name, questions=len(answerable), no_answer_questions=len(unanswerable),
        citation_precision=round(correct / cited, 3) if cited else 0.0,
        cited_correctly=groups["all"].cited_correctly if "all" in groups else 0.0,
        cross_lingual_cited_correctly=cross.cited_correctly if cross else 0.0,
        unanswered=groups["all"].unanswered if "all" in groups else 0.0,
        abstain_no_answer=round(1 - outcomes_no["answer"] / len(unanswerable), 3) if unanswerable else 0.0,
        outcomes_answerable=dict(outcomes_yes), outcomes_no_answer=dict(outcomes_no), groups=groups,
        ask_ms_p50=round(1000 * timings[len(timings) // 2], 1) if timings else 0.0,
    )  # fmt: skip


def evaluate_answers(
    kb: KnowledgeBase, mode: str = "evidence", judgments: Path | None = CORPUS_JUDGMENTS
) -> AnswerEval:
    rows: list[dict] = []
    tuning = score_set(
        kb, "tuning", _read([CORPUS_QUESTIONS, SAMEFACT_QUESTIONS], judgments),
        _read([NO_ANSWER_QUESTIONS, NEAR_MISS_QUESTIONS], None), mode, rows,
    )  # fmt: skip
    sets = [tuning]
    if HELDOUT_QUESTIONS.exists():
        held = read_questions(HELDOUT_QUESTIONS)
        sets.append(score_set(kb, "held-apart", [q for q in held if q.answers],
                              [q for q in held if not q.answers], mode, rows))  # fmt: skip
    model = kb.answerer.model
    return AnswerEval(
        mode=mode, gold="pooled" if judgments else "writer",
        threshold=model.threshold if model is not None else kb.settings.abstain_threshold, sets=sets, per_question=rows,
    )  # fmt: skip
