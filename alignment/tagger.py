"""Multi-label tagging of passages against the framework labels, from the passages' own embeddings.

Each label is a set of prototype embeddings (description, examples, key terms in several languages); a
passage's score for a label is its best cosine to those prototypes. A label applies when the score clears the
label's threshold and beats the passage's similarity to the background prototypes (contents pages,
acknowledgements, copyright notices) by a margin, so page furniture stays unlabelled. Because tags come from
vectors already in the index, re-tagging after a frameworks edit needs no re-embedding.
"""

from __future__ import annotations

import numpy as np

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


class Tagger:
    def __init__(self, settings: Settings, embedder: Embedder, frameworks: Frameworks | None = None) -> None:
        self.settings, self.embedder = settings, embedder
        self.frameworks = frameworks or load_frameworks(settings.frameworks_file)
        self._matrix: np.ndarray | None = None

    @property
    def fingerprint(self) -> str:
        s = self.settings
        return f"{self.frameworks.fingerprint}|{s.tag_threshold}|{s.tag_margin}"

    @property
    def label_ids(self) -> list[str]:
        return [lab.id for lab in self.frameworks.labels]

    def _prototypes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prototype vectors, owning label index per prototype (-1: background), thresholds per label)."""
        if self._matrix is None:
            texts, owners = [], []
            for i, lab in enumerate(self.frameworks.labels):
                for t in lab.prototypes():
                    texts.append(t)
                    owners.append(i)
            for t in self.frameworks.background or DEFAULT_BACKGROUND:
                texts.append(t)
                owners.append(-1)
            self._matrix = self.embedder.encode_passages(texts)
            self._owners = np.array(owners)
            self._thresholds = np.array(
                [lab.threshold if lab.threshold is not None else self.settings.tag_threshold
                 for lab in self.frameworks.labels]
            )  # fmt: skip
        return self._matrix, self._owners, self._thresholds

    def scores(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(label scores [n, labels], background score [n]) for passage vectors."""
        matrix, owners, _ = self._prototypes()
        sims = np.asarray(vectors, dtype=np.float32) @ matrix.T
        n_labels = len(self.frameworks.labels)
        label_scores = np.full((sims.shape[0], n_labels), -1.0, dtype=np.float32)
        for j in range(n_labels):
            label_scores[:, j] = sims[:, owners == j].max(axis=1)
        background = sims[:, owners == -1].max(axis=1)
        return label_scores, background

    def tag_vectors(self, vectors: np.ndarray) -> list[dict[str, float]]:
        if len(vectors) == 0:
            return []
        label_scores, background = self.scores(vectors)
        _, _, thresholds = self._prototypes()
        ids = self.label_ids
        out = []
        for row, bg in zip(label_scores, background, strict=True):
            keep = (row >= thresholds) & (row >= bg + self.settings.tag_margin)
            out.append({ids[j]: round(float(row[j]), 4) for j in np.flatnonzero(keep)})
        return out

    def tag_texts(self, texts: list[str]) -> list[dict[str, float]]:
        return self.tag_vectors(self.embedder.encode_passages(texts))
