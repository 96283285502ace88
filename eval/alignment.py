"""`kb eval alignment`: per-label precision/recall/F1, micro-F1 and how many unlabelled passages stay unlabelled.

The labelled passages also train the tagger, so the honest number is k-fold cross-validated: each fold's
passages are tagged by a tagger trained without them (the frameworks' own examples always stay in training).
Folds are random by default, so a passage's document has other passages in training, as it has when the
tagger tags the library it was trained on; ``by_document`` keeps each document's passages in one fold, which is
what a newly added document meets (measured: micro-F1 .58 against .70).
The scores are also given per sample (the id's letter, see eval/data/ALIGNMENT_GUIDE.md): passages cut at
random from the corpus are harder than the hand-picked ones, and they are what search meets.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from sklearn.model_selection import GroupKFold, KFold

from alignment.tagger import LabelledText, Tagger, read_labelled


class LabelScore(BaseModel):
    label: str
    support: int
    precision: float
    recall: float
    f1: float


class SampleScore(BaseModel):
    sample: str
    passages: int
    micro_f1: float
    unlabelled_kept: float


SAMPLES = {"a": "hand-picked", "b": "random"}  # by the first letter of a labelled passage's id


class AlignmentEval(BaseModel):
    passages: int
    folds: int
    seed: int
    split: str  # "random" or "by document"
    micro_precision: float
    micro_recall: float
    micro_f1: float
    unlabelled_kept: float  # share of passages labelled "none" that the tagger left without labels
    per_label: list[LabelScore]
    per_sample: list[SampleScore]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return round(p, 3), round(r, 3), round(2 * p * r / (p + r) if p + r else 0.0, 3)


def evaluate_alignment(tagger: Tagger, folds: int = 5, seed: int = 0, by_document: bool = False) -> AlignmentEval:
    gold = read_labelled(tagger.settings.alignment_training_file)
    ids = tagger.label_ids
    y = np.array([[lab in g.labels for lab in ids] for g in gold])
    vectors = tagger.embed_cached([g.text for g in gold])  # cached: a rerun or the other split starts at once
    extra = [t for t in Tagger(tagger.settings, tagger.embedder, tagger.frameworks, training=[]).training_set()]
    extra_vectors = tagger.embed_cached([t.text for t in extra])
    pred = np.zeros_like(y)
    if by_document:
        splits = GroupKFold(folds, shuffle=True, random_state=seed).split(vectors, groups=[g.file for g in gold])
    else:
        splits = KFold(folds, shuffle=True, random_state=seed).split(vectors)
    for train, test in splits:
        items: list[LabelledText] = [gold[i] for i in train] + extra
        models = tagger.fit(np.vstack([vectors[train], extra_vectors]), items)
        tags = tagger.tag_vectors(vectors[test], [gold[i].text for i in test], models)
        for row, labels in zip(test, tags, strict=True):
            pred[row] = [lab in labels for lab in ids]
    per_label = []
    for j, lab in enumerate(ids):
        tp, fp, fn = _counts(pred[:, j], y[:, j])
        p, r, f = _prf(tp, fp, fn)
        per_label.append(LabelScore(label=lab, support=int(y[:, j].sum()), precision=p, recall=r, f1=f))
    p, r, f = _prf(*_counts(pred, y))
    per_sample = []
    for letter, name in SAMPLES.items():
        rows = np.array([g.id.startswith(letter) for g in gold])
        if rows.any():
            per_sample.append(SampleScore(
                sample=name, passages=int(rows.sum()), micro_f1=_prf(*_counts(pred[rows], y[rows]))[2],
                unlabelled_kept=_kept(pred[rows], y[rows]),
            ))  # fmt: skip
    return AlignmentEval(
        passages=len(gold), folds=folds, seed=seed, split="by document" if by_document else "random",
        micro_precision=p, micro_recall=r, micro_f1=f, unlabelled_kept=_kept(pred, y), per_label=per_label,
        per_sample=per_sample,
    )  # fmt: skip


def _counts(pred: np.ndarray, gold: np.ndarray) -> tuple[int, int, int]:
    return int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())


def _kept(pred: np.ndarray, gold: np.ndarray) -> float:
    """Share of the passages labelled "none" that the tagger left without labels."""
    none = ~gold.any(axis=1)
    return round(float((~pred[none].any(axis=1)).mean()), 3) if none.any() else 1.0
