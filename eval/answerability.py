"""`kb eval answerability`: fit the answerability model on the tuning questions, by question-grouped CV.

Rows are the candidate sentences the answerer reads for each question (the same search, sentence scoring and
features as ``kb ask``). A sentence is labelled as answering when it comes from a gold page (or quotes the gold
span) and holds the answer: the gold span, most of its words, or a judged page's evidence. Every sentence of a
no-answer question is labelled as not answering. Five-fold cross-validation grouped by question gives each
question an out-of-fold confidence; the bar is chosen on those (the held-apart questions never take part).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from answer.answerability import FEATURES, AnswerabilityModel, features
from eval.retrieval import EVAL_DATA, Question, gold_for, normalise, quotes, read_questions
from kb.service import KnowledgeBase

TUNING_ANSWERABLE = ("corpus_questions.jsonl", "samefact_questions.jsonl")
TUNING_UNANSWERABLE = ("no_answer_questions.jsonl", "near_miss_questions.jsonl")
TARGET_ABSTENTION = 0.85  # the bar: abstain on at least this share of no-answer questions
FOLDS = 5


@dataclass
class QuestionRows:
    question: Question
    answerable: bool
    rows: np.ndarray
    labels: np.ndarray  # sentence answers
    correct: np.ndarray  # sentence would be a correct citation (gold file and page, or the span quoted)


class ThresholdChoice(BaseModel):
    threshold: float
    abstain_no_answer: float
    answerable_unanswered: float
    answerable_cited_correctly: float


def holds_answer(q: Question, text: str) -> bool:
    if quotes(text, q.answer_text):
        return True
    words = normalise(q.answer_text).split()
    have = set(normalise(text).split())
    if words and sum(w in have for w in words) / len(words) >= 0.6:
        return True
    return any(g.evidence and (quotes(text, g.evidence) or quotes(g.evidence, text)) for g in q.answers)


def question_rows(kb: KnowledgeBase, q: Question, answerable: bool) -> QuestionRows:
    answerer = kb.answerer
    result, ranked, missing = answerer.gather(q.question)
    candidates, rows = features(
        q.question, result.query_language, ranked, len(missing), kb.settings.answerability_candidates
    )
    correct = np.array([answerable and gold_for(q, s.hit.file, s.page, s.text) for s in candidates], dtype=bool)
    labels = np.array([c and holds_answer(q, s.text) for c, s in zip(correct, candidates, strict=True)], dtype=bool)
    return QuestionRows(q, answerable, rows, labels, correct)


def read_sets(names: tuple[str, ...], judgments: Path | None) -> list[Question]:
    out: list[Question] = []
    for name in names:
        path = EVAL_DATA / name
        if path.exists():
            out += read_questions(path, judgments)
    return out


def gather(kb: KnowledgeBase, judgments: Path | None) -> list[QuestionRows]:
    yes = [question_rows(kb, q, True) for q in read_sets(TUNING_ANSWERABLE, judgments) if q.answers]
    no = [question_rows(kb, q, False) for q in read_sets(TUNING_UNANSWERABLE, None)]
    return yes + no


def _fit(rows: np.ndarray, labels: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, LogisticRegression]:
    mean, scale = rows.mean(0), rows.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    model.fit((rows - mean) / scale, labels)
    return mean, scale, model


def out_of_fold(items: list[QuestionRows], c: float) -> list[np.ndarray]:
    """Each question's sentence probabilities from a model fitted without it."""
    groups = np.arange(len(items))
    probs: list[np.ndarray] = [np.zeros(0)] * len(items)
    for train, test in GroupKFold(n_splits=FOLDS).split(groups, groups=groups):
        rows = np.concatenate([items[i].rows for i in train if len(items[i].rows)])
        labels = np.concatenate([items[i].labels for i in train if len(items[i].rows)])
        mean, scale, model = _fit(rows, labels, c)
        for i in test:
            if len(items[i].rows):
                probs[i] = model.predict_proba((items[i].rows - mean) / scale)[:, 1]
    return probs


def outcomes(items: list[QuestionRows], probs: list[np.ndarray], threshold: float) -> ThresholdChoice:
    no = [it for it in items if not it.answerable]
    yes = [(it, p) for it, p in zip(items, probs, strict=True) if it.answerable]
    conf_no = np.array([p.max() if len(p) else 0.0 for it, p in zip(items, probs, strict=True) if not it.answerable])
    unanswered = sum(not len(p) or p.max() < threshold for _, p in yes)
    cited = sum(len(p) and p.max() >= threshold and it.correct[int(np.argmax(p))] for it, p in yes)
    return ThresholdChoice(
        threshold=round(threshold, 3),
        abstain_no_answer=round(float((conf_no < threshold).mean()) if len(no) else 0.0, 3),
        answerable_unanswered=round(unanswered / len(yes), 3) if yes else 0.0,
        answerable_cited_correctly=round(cited / len(yes), 3) if yes else 0.0,
    )


def choose_threshold(items: list[QuestionRows], probs: list[np.ndarray]) -> tuple[ThresholdChoice, list]:
    """The lowest bar that abstains on the target share of no-answer questions (the fewest answerable ones
    left unanswered); when no bar reaches it, the bar with the best balance of the two."""
    sweep = [outcomes(items, probs, t) for t in np.arange(0.05, 0.96, 0.01)]
    meeting = [r for r in sweep if r.abstain_no_answer >= TARGET_ABSTENTION]
    if meeting:
        return meeting[0], sweep
    return max(sweep, key=lambda r: r.abstain_no_answer + r.answerable_cited_correctly), sweep


class AnswerabilityFit(BaseModel):
    questions: int
    no_answer_questions: int
    sentences: int
    answering_sentences: int
    regularisation: float
    cv: ThresholdChoice
    sweep: list[ThresholdChoice]
    coefficients: dict[str, float]


def fit(kb: KnowledgeBase, judgments: Path | None, save_to: Path | None) -> AnswerabilityFit:
    items = gather(kb, judgments)
    best: tuple | None = None
    for c in (0.1, 0.3, 1.0):  # regularisation chosen by the same cross-validation
        probs = out_of_fold(items, c)
        choice, sweep = choose_threshold(items, probs)
        key = (choice.abstain_no_answer >= TARGET_ABSTENTION, choice.answerable_cited_correctly,
               -choice.answerable_unanswered)  # fmt: skip
        if best is None or key > best[0]:
            best = (key, c, choice, sweep)
    assert best is not None
    _, c, choice, sweep = best
    rows = np.concatenate([it.rows for it in items if len(it.rows)])
    labels = np.concatenate([it.labels for it in items if len(it.rows)])
    mean, scale, model = _fit(rows, labels, c)
    result = AnswerabilityFit(
        questions=sum(it.answerable for it in items), no_answer_questions=sum(not it.answerable for it in items),
        sentences=len(rows), answering_sentences=int(labels.sum()), regularisation=c, cv=choice, sweep=sweep,
        coefficients={f: round(float(w), 4) for f, w in zip(FEATURES, model.coef_[0], strict=True)},
    )  # fmt: skip
    if save_to is not None:
        info = {"fitted_on": list(TUNING_ANSWERABLE + TUNING_UNANSWERABLE), "cv": choice.model_dump(),
                "regularisation": c, "sentences": len(rows)}  # fmt: skip
        AnswerabilityModel(mean, scale, model.coef_[0], float(model.intercept_[0]), choice.threshold, info).save(
            save_to
        )
    return result
