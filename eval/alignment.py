"""`kb eval alignment`: how well framework tags hold, per label and per language, and how many unlabelled passages
stay unlabelled.

The labelled passages also train the tagger, so every number is cross-validated: each fold's passages are tagged by
a tagger trained without them (the frameworks' own examples always stay in training). The split that matters is
**by document**: every document staff add is one the tagger never saw, so each document's passages stay in one
fold. Random folds, where a passage's document has other passages in training, come second (they flatter the
tagger by about .1 micro-F1). The held-apart row tags passages from documents outside the shared corpus
(``eval/data/alignment_heldout.jsonl``) with the tagger trained on all labelled passages; it never chose anything.
The scores are also given per sample (the id's letter, see eval/data/ALIGNMENT_GUIDE.md).
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


class GroupScore(BaseModel):
    """Micro scores of one slice of the passages (a sample, a language)."""

    group: str
    passages: int
    micro_precision: float
    micro_recall: float
    micro_f1: float
    unlabelled_kept: float


SAMPLES = {"a": "hand-picked", "b": "random"}  # by the first letter of a labelled passage's id


class AlignmentEval(BaseModel):
    passages: int
    folds: int
    seed: int
    split: str  # "by document", "random" or "held-apart"
    gate_threshold: float
    label_threshold: float
    micro_precision: float
    micro_recall: float
    micro_f1: float
    unlabelled_kept: float  # share of passages labelled "none" that the tagger left without labels
    per_label: list[LabelScore]
    per_sample: list[GroupScore]
    per_language: list[GroupScore]


class ThresholdRow(BaseModel):
    gate_threshold: float
    label_threshold: float
    micro_f1: float
    micro_recall: float
    unlabelled_kept: float


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return round(p, 3), round(r, 3), round(2 * p * r / (p + r) if p + r else 0.0, 3)


def _counts(pred: np.ndarray, gold: np.ndarray) -> tuple[int, int, int]:
    return int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())


def _kept(pred: np.ndarray, gold: np.ndarray) -> float:
    """Share of the passages labelled "none" that the tagger left without labels."""
    none = ~gold.any(axis=1)
    return round(float((~pred[none].any(axis=1)).mean()), 3) if none.any() else 1.0


def _group(name: str, pred: np.ndarray, gold: np.ndarray) -> GroupScore:
    p, r, f = _prf(*_counts(pred, gold))
    return GroupScore(
        group=name, passages=len(gold), micro_precision=p, micro_recall=r, micro_f1=f, unlabelled_kept=_kept(pred, gold)
    )


def _extra(tagger: Tagger) -> tuple[list[LabelledText], np.ndarray]:
    """The frameworks' own texts (descriptions, examples, background): in every fold's training."""
    extra = Tagger(tagger.settings, tagger.embedder, tagger.frameworks, training=[]).training_set()
    return extra, tagger.embed_cached([t.text for t in extra])


def out_of_fold(
    tagger: Tagger, gold: list[LabelledText], folds: int, seed: int, by_document: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(gate probability [n], label probabilities [n, labels]) of each labelled passage, from a tagger trained on
    the other folds."""
    vectors = tagger.embed_cached([g.text for g in gold])  # cached: a rerun or the other split starts at once
    extra, extra_vectors = _extra(tagger)
    gate = np.zeros(len(gold))
    probs = np.zeros((len(gold), len(tagger.label_ids)), dtype=np.float32)
    if by_document:
        splits = GroupKFold(folds, shuffle=True, random_state=seed).split(vectors, groups=[g.file for g in gold])
    else:
        splits = KFold(folds, shuffle=True, random_state=seed).split(vectors)
    for train, test in splits:
        models = tagger.fit(np.vstack([vectors[train], extra_vectors]), [gold[i] for i in train] + extra)
        gate[test], probs[test] = tagger.probabilities(
            vectors[test], [gold[i].text for i in test], models, [gold[i].context for i in test]
        )
    return gate, probs


def score(
    tagger: Tagger, gold: list[LabelledText], gate: np.ndarray, probs: np.ndarray, split: str, folds: int, seed: int
) -> AlignmentEval:
    ids = tagger.label_ids
    y = np.array([[lab in g.labels for lab in ids] for g in gold]).reshape(len(gold), len(ids))
    pred = np.array([[lab in tags for lab in ids] for tags in tagger.decide(gate, probs)]).reshape(y.shape)
    per_label = []
    for j, lab in enumerate(ids):
        p, r, f = _prf(*_counts(pred[:, j], y[:, j]))
        per_label.append(LabelScore(label=lab, support=int(y[:, j].sum()), precision=p, recall=r, f1=f))
    overall = _group("all", pred, y)
    per_sample = []
    for letter, name in SAMPLES.items():
        rows = np.array([g.id.startswith(letter) for g in gold])
        if rows.any() and not rows.all():
            per_sample.append(_group(name, pred[rows], y[rows]))
    languages = np.array([g.context.language or "?" for g in gold])
    per_language = [_group(lang, pred[languages == lang], y[languages == lang]) for lang in sorted(set(languages))]
    s = tagger.settings
    return AlignmentEval(
        passages=len(gold), folds=folds, seed=seed, split=split, gate_threshold=s.tag_gate_threshold,
        label_threshold=s.tag_label_threshold, micro_precision=overall.micro_precision,
        micro_recall=overall.micro_recall, micro_f1=overall.micro_f1, unlabelled_kept=overall.unlabelled_kept,
        per_label=per_label, per_sample=per_sample, per_language=per_language,
    )  # fmt: skip


def labelled(tagger: Tagger) -> list[LabelledText]:
    s = tagger.settings
    return read_labelled(s.alignment_training_file, s.alignment_context_file)


def evaluate_alignment(tagger: Tagger, folds: int = 5, seed: int = 0, by_document: bool = True) -> AlignmentEval:
    gold = labelled(tagger)
    gate, probs = out_of_fold(tagger, gold, folds, seed, by_document)
    return score(tagger, gold, gate, probs, "by document" if by_document else "random", folds, seed)


def evaluate_heldout(tagger: Tagger) -> AlignmentEval | None:
    """The tagger as shipped (trained on every labelled passage) on the held-apart passages; None without them."""
    gold = read_labelled(tagger.settings.alignment_heldout_file)
    if not gold:
        return None
    vectors = tagger.embed_cached([g.text for g in gold])
    gate, probs = tagger.probabilities(vectors, [g.text for g in gold], None, [g.context for g in gold])
    return score(tagger, gold, gate, probs, "held-apart", 0, 0)


def threshold_grid(
    tagger: Tagger, gold: list[LabelledText], gate: np.ndarray, probs: np.ndarray, gates: list[float],
    labels: list[float],
) -> list[ThresholdRow]:  # fmt: skip
    """Scores over a grid of gate and label thresholds on out-of-fold probabilities (to choose the settings)."""
    rows = []
    for g in gates:
        for t in labels:
            probe = Tagger(
                tagger.settings.model_copy(update={"tag_gate_threshold": g, "tag_label_threshold": t}),
                tagger.embedder, tagger.frameworks, training=[],
            )  # fmt: skip
            result = score(probe, gold, gate, probs, "", 0, 0)
            rows.append(ThresholdRow(
                gate_threshold=g, label_threshold=t, micro_f1=result.micro_f1, micro_recall=result.micro_recall,
                unlabelled_kept=result.unlabelled_kept,
            ))  # fmt: skip
    return rows
