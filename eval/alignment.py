"""`kb eval alignment`: per-label precision/recall/F1, micro-F1 and how many unlabelled passages stay unlabelled.

The labelled passages also train the tagger, so the honest number is k-fold cross-validated: each fold's
passages are tagged by a tagger trained without them (the frameworks' own examples always stay in training).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel
from sklearn.model_selection import KFold

from alignment.tagger import LabelledText, Tagger, read_labelled


class LabelScore(BaseModel):
    label: str
    support: int
    precision: float
    recall: float
    f1: float


class AlignmentEval(BaseModel):
    passages: int
    folds: int
    micro_precision: float
    micro_recall: float
    micro_f1: float
    unlabelled_kept: float  # share of passages labelled "none" that the tagger left without labels
    per_label: list[LabelScore]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return round(p, 3), round(r, 3), round(2 * p * r / (p + r) if p + r else 0.0, 3)


def evaluate_alignment(tagger: Tagger, folds: int = 5, seed: int = 0) -> AlignmentEval:
    gold = read_labelled(tagger.settings.alignment_training_file)
    ids = tagger.label_ids
    y = np.array([[lab in g.labels for lab in ids] for g in gold])
    vectors = tagger.embedder.encode_passages([g.text for g in gold])
    extra = [t for t in Tagger(tagger.settings, tagger.embedder, tagger.frameworks, training=[]).training_set()]
    extra_vectors = tagger.embedder.encode_passages([t.text for t in extra])
    pred = np.zeros_like(y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(vectors):
        items: list[LabelledText] = [gold[i] for i in train] + extra
        models = tagger.fit(np.vstack([vectors[train], extra_vectors]), items)
        tags = tagger.tag_vectors(vectors[test], [gold[i].text for i in test], models)
        for row, labels in zip(test, tags, strict=True):
            pred[row] = [lab in labels for lab in ids]
    per_label = []
    for j, lab in enumerate(ids):
        tp, fp, fn = (
            int((pred[:, j] & y[:, j]).sum()),
            int((pred[:, j] & ~y[:, j]).sum()),
            int((~pred[:, j] & y[:, j]).sum()),
        )
        p, r, f = _prf(tp, fp, fn)
        per_label.append(LabelScore(label=lab, support=int(y[:, j].sum()), precision=p, recall=r, f1=f))
    tp, fp, fn = int((pred & y).sum()), int((pred & ~y).sum()), int((~pred & y).sum())
    p, r, f = _prf(tp, fp, fn)
    none = ~y.any(axis=1)
    kept = float((~pred[none].any(axis=1)).mean()) if none.any() else 1.0
    return AlignmentEval(
        passages=len(gold), folds=folds, micro_precision=p, micro_recall=r, micro_f1=f,
        unlabelled_kept=round(kept, 3), per_label=per_label,
    )  # fmt: skip
