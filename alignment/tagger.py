"""Multi-label tagging of passages against the framework labels, from the passages' own embeddings.

Two small logistic-regression stages on the multilingual e5 vectors: a gate (does this passage carry policy
substance at all, or is it a contents page, credits, references?) and one classifier per label. They are trained
on the labelled passages (``eval/data/alignment_labels.jsonl``), the examples and descriptions of each label in
the frameworks file, and background texts. Because tags come from vectors already in the index, re-tagging after
a frameworks edit needs no re-embedding. Measured on the labelled set (5-fold CV), this beat prototype cosines
by ~0.15 micro-F1: e5 squeezes all cosines into 0.8–0.9, so fixed thresholds cannot separate the labels.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression

from alignment.frameworks import Frameworks, load_frameworks
from index.embedder import Embedder
from kb.settings import Settings

DEFAULT_BACKGROUND = [
    "Table of contents, list of figures and list of tables with page numbers.",
    "Acknowledgements: we thank the following people and organisations for their contributions.",
    "Copyright notice, ISBN, licence terms and suggested citation of this publication.",
    "References and bibliography: authors, titles, journals, years and web addresses.",
    "Document version history, change log, dates and authors of each revision.",
    "Sommaire, table des matières, remerciements, mentions légales.",
    "Inhaltsverzeichnis, Impressum, Danksagung, Literaturverzeichnis.",
    "Innholdsfortegnelse, forord, takk, litteraturliste.",
]


class LabelledText(BaseModel):
    text: str
    labels: list[str]


def read_labelled(path: Path) -> list[LabelledText]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [LabelledText(text=r["text"], labels=r.get("labels", [])) for r in rows]


class Tagger:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        frameworks: Frameworks | None = None,
        training: list[LabelledText] | None = None,
    ) -> None:
        self.settings, self.embedder = settings, embedder
        self.frameworks = frameworks or load_frameworks(settings.frameworks_file)
        self.passages = read_labelled(settings.alignment_training_file) if training is None else training

    @property
    def label_ids(self) -> list[str]:
        return [lab.id for lab in self.frameworks.labels]

    @cached_property
    def fingerprint(self) -> str:
        """Changes when anything that decides a tag changes: frameworks, training passages, thresholds."""
        s = self.settings
        data = [
            self.frameworks.fingerprint,
            [p.model_dump() for p in self.passages],
            [s.tag_gate_threshold, s.tag_label_threshold, s.tag_max_labels, s.tag_regularisation],
            self.embedder.fingerprint,
        ]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def training_set(self) -> list[LabelledText]:
        """Labelled passages, then each label's description and examples, then background (no label)."""
        items = [p for p in self.passages if set(p.labels) <= set(self.label_ids)]
        for lab in self.frameworks.labels:
            items += [LabelledText(text=t, labels=[lab.id]) for t in [f"{lab.short}. {lab.description}", *lab.examples]]
        items += [LabelledText(text=t, labels=[]) for t in self.frameworks.background or DEFAULT_BACKGROUND]
        return items

    def _training_vectors(self, items: list[LabelledText]) -> np.ndarray:
        """Embeddings of the training texts, cached in KB_HOME so each process does not re-embed them."""
        key = hashlib.sha256(json.dumps([self.embedder.fingerprint, [i.text for i in items]]).encode()).hexdigest()[:16]
        cache = self.settings.home / "cache" / f"alignment-{key}.npy"
        if cache.exists():
            return np.load(cache)
        vectors = self.embedder.encode_passages([i.text for i in items])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
        return vectors

    @cached_property
    def models(self) -> tuple[LogisticRegression, list[LogisticRegression | None]]:
        items = self.training_set()
        return self.fit(self._training_vectors(items), items)

    def fit(
        self, vectors: np.ndarray, items: list[LabelledText]
    ) -> tuple[LogisticRegression, list[LogisticRegression | None]]:
        c = self.settings.tag_regularisation
        y = np.array([[lab in i.labels for lab in self.label_ids] for i in items])
        substantive = y.any(axis=1)
        gate = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(vectors, substantive)
        per_label: list[LogisticRegression | None] = []
        for j in range(len(self.label_ids)):
            target = y[substantive, j]
            if target.all() or not target.any():
                per_label.append(None)
                continue
            model = LogisticRegression(C=c * 3, max_iter=3000, class_weight="balanced")
            per_label.append(model.fit(vectors[substantive], target))
        return gate, per_label

    def probabilities(self, vectors: np.ndarray, models: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(gate probability [n], label probabilities [n, labels])."""
        gate, per_label = models or self.models
        vectors = np.asarray(vectors, dtype=np.float32)
        g = gate.predict_proba(vectors)[:, 1]
        p = np.zeros((len(vectors), len(self.label_ids)), dtype=np.float32)
        for j, model in enumerate(per_label):
            if model is not None:
                p[:, j] = model.predict_proba(vectors)[:, 1]
        return g, p

    def decide(self, gate: np.ndarray, probs: np.ndarray) -> list[dict[str, float]]:
        """Gated-in passages keep their best label plus the next ones that clear the label threshold."""
        s = self.settings
        out: list[dict[str, float]] = []
        for g, row in zip(gate, probs, strict=True):
            labels: dict[str, float] = {}
            if g >= s.tag_gate_threshold:
                for rank, j in enumerate(np.argsort(-row)[: s.tag_max_labels]):
                    if rank == 0 or row[j] >= s.tag_label_threshold:
                        labels[self.label_ids[j]] = round(float(row[j]), 4)
            out.append(labels)
        return out

    def tag_vectors(self, vectors: np.ndarray, models: tuple | None = None) -> list[dict[str, float]]:
        if len(vectors) == 0:
            return []
        return self.decide(*self.probabilities(vectors, models))

    def tag_texts(self, texts: list[str]) -> list[dict[str, float]]:
        return self.tag_vectors(self.embedder.encode_passages(texts))
