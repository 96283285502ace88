"""Does this sentence answer the question? Checkable signals, combined into one calibrated confidence.

Similarity says a sentence is on the question's topic; it does not say the sentence answers it ("how many
teleconsultations were reimbursed in 2022?" resembles every sentence about teleconsultation). So each candidate
sentence is read for what an answer needs:

- the answer type the question expects (how many, how much, which year, how long, what share, who) and whether
  the sentence carries one (a number, an amount with a currency, a year or a month, a duration, a percentage,
  a name the question does not contain), from ``answer_types.yaml``;
- the question's key names and phrases (acronyms, codes, years, quoted or capitalised multi-word names such as
  "Gemeinsam Digital"), found as whole phrases in the sentence or its passage, not as loose words;
- the sentence's meaning (question–sentence similarity) and shared words.

A logistic model over these features (fitted by ``kb eval answerability --fit`` on the tuning questions, by
question-grouped cross-validation; coefficients in ``answerability_model.json``) gives each sentence the
probability that it answers; the answer quotes the most probable sentence, and only sentences that clear the bar.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from answer.coverage import name_like
from answer.evidence import Sentence

TYPES_FILE = Path(__file__).with_name("answer_types.yaml")
MODEL_FILE = Path(__file__).with_name("answerability_model.json")
# What the sentence and its passage say against the question only: rank, margin and gap features were tried and
# dropped (kb eval answerability: no better under cross-validation, and they depend on the library's size, so a
# small library made near misses look certain). "The sentence is in the question's language" stays: e5 rates
# cross-lingual pairs lower for the same meaning, and without it the cross-validated bar loses a third of the
# answers at the same abstention.
FEATURES = (
    "similarity", "lexical", "same_language", "expects_type", "type_matched", "type_missing",
    "phrases_in_sentence", "phrases_in_passage", "phrase_missing_in_passage", "has_phrases", "unknown_names",
    "length",
)  # fmt: skip
QUOTED = re.compile(r"[\"“„«‚']([^\"”“»‘']{3,80})[\"”“»‘']")
CODE = re.compile(r"\b[\w@+./-]*\d[\w@+./-]*\b|\b[A-ZÆØÅÄÖÜ]{2,}[a-z]?\b")
YEAR_OR_NUMBER = re.compile(r"\b\d[\d.,]*\b")


@dataclass(frozen=True)
class AnswerTypes:
    order: tuple[str, ...]
    questions: dict[str, dict[str, list[re.Pattern]]]  # type -> language -> patterns
    sentences: dict[str, list[re.Pattern]]


@lru_cache(maxsize=1)
def answer_types(path: Path = TYPES_FILE) -> AnswerTypes:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))["types"]
    questions = {t: {lang: [re.compile(p) for p in ps] for lang, ps in d["questions"].items()} for t, d in data.items()}
    sentences = {t: [re.compile(p) for p in d.get("sentence") or []] for t, d in data.items()}
    return AnswerTypes(order=tuple(data), questions=questions, sentences=sentences)


def fold(text: str) -> str:
    """Lowercase, dashes and quotes unified, whitespace collapsed: phrases match across typography."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[‐-―−]", "-", text).replace("’", "'")
    return " ".join(text.split())


def expected_type(question: str, language: str) -> str | None:
    """The kind of answer the question asks for, or None (what / how / why questions)."""
    text, types = fold(question), answer_types()
    for name in types.order:
        by_lang = types.questions[name]
        patterns = by_lang.get(language) or [p for ps in by_lang.values() for p in ps]
        if any(p.search(text) for p in patterns):
            return name
    return None


def carries(sentence: str, kind: str, question: str = "") -> bool:
    """The sentence holds an answer of this kind (for ``who``: a name or acronym the question lacks)."""
    if kind == "who":
        asked = {fold(w) for w in re.findall(r"\w+", question)}
        names = name_like(sentence, "en") + re.findall(r"\b[A-ZÆØÅÄÖÜ]{2,}\b", sentence)
        return any(fold(n) not in asked for n in names)
    text = fold(sentence)
    patterns = answer_types().sentences.get(kind, [])
    if kind in ("count", "amount") and not _numbers_beyond(text, question):
        return False
    return any(p.search(text) for p in patterns)


def _numbers_beyond(sentence: str, question: str) -> bool:
    """A figure other than those the question itself states ("in 2022" is not an answer to "how many")."""
    asked = set(YEAR_OR_NUMBER.findall(fold(question)))
    found = [n for n in YEAR_OR_NUMBER.findall(sentence) if n not in asked]
    return bool(found) or bool(re.search(r"\b[a-zäöüéèàøå]+\b", sentence) and not re.search(r"\d", sentence))


def key_phrases(question: str, language: str) -> list[str]:
    """What an answering passage must name: quoted strings, codes and years, acronyms, and runs of capitalised
    words (a programme or law: "Gemeinsam Digital", "Data Saves Lives"), folded for matching."""
    found = [m.group(1) for m in QUOTED.finditer(question)]
    found += [c for c in CODE.findall(question) if len(c) >= 2]
    words = list(re.finditer(r"[\w-]+", question))
    run: list[str] = []
    names = set(name_like(question, language if language != "de" else "en"))
    runs: list[list[str]] = []
    for m in [*words, None]:
        if m is not None and (m.group(0) in names or (run and m.group(0)[:1].isupper())):
            run.append(m.group(0))
            continue
        if len(run) >= 2:
            runs.append(run)
        run = []
    for run in runs:  # "Strategie Gemeinsam Digital": the name may be the run's tail (a German noun first)
        found.append(" ".join(run[-2:]) if language == "de" and len(run) >= 3 else " ".join(run))
    return list(dict.fromkeys(fold(f) for f in found if f.strip()))


def phrase_share(phrases: list[str], text: str) -> float:
    if not phrases:
        return 0.0
    folded = fold(text)
    return sum(_contains(folded, p) for p in phrases) / len(phrases)


def _contains(folded: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", folded) is not None


def features(
    question: str, language: str, ranked: list[Sentence], unknown: int, limit: int
) -> tuple[list[Sentence], np.ndarray]:
    """The feature rows (``FEATURES``) of the ``limit`` sentences most similar to the question."""
    candidates = sorted(ranked, key=lambda s: -s.similarity)[:limit]
    if not candidates:
        return [], np.zeros((0, len(FEATURES)))
    kind = expected_type(question, language)
    phrases = key_phrases(question, language)
    rows = []
    for s in candidates:
        matched = bool(kind) and carries(s.text, kind, question)
        in_passage = phrase_share(phrases, s.hit.text)
        rows.append([
            s.similarity, s.lexical, float(s.hit.language == language),
            float(kind is not None), float(matched), float(kind is not None and not matched),
            phrase_share(phrases, s.text), in_passage, float(bool(phrases) and in_passage < 1.0),
            float(bool(phrases)), float(unknown), math.log1p(len(s.text)),
        ])  # fmt: skip
    return candidates, np.asarray(rows, dtype=np.float64)


@dataclass
class AnswerabilityModel:
    """Standardised logistic regression over ``FEATURES`` and the bar a sentence's probability must clear."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    info: dict

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> AnswerabilityModel | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path} was fitted on other features; re-fit it with kb eval answerability --fit")
        return cls(
            np.asarray(data["mean"]), np.asarray(data["scale"]), np.asarray(data["coef"]), float(data["intercept"]),
            float(data["threshold"]), data.get("info", {}),
        )  # fmt: skip

    def save(self, path: Path = MODEL_FILE) -> None:
        data = {"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "threshold": self.threshold,
                "info": self.info}  # fmt: skip
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        z = ((rows - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))
