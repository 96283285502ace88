"""The coverage map: passages per framework label × country (or document, or language), and the gaps."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from alignment.frameworks import Frameworks
from index.store import VectorStore
from kb.records import SearchFilters

# grouping -> payload key; "about" (countries discussed) is a list: a passage counts in each of its countries
GROUPINGS = {"country": "country", "about": "about", "document": "file", "language": "doc_language"}


class Coverage(BaseModel):
    by: str
    labels: list[str]
    label_names: dict[str, str]
    columns: list[str]
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)  # label -> column -> passages
    totals: dict[str, int] = Field(default_factory=dict)  # column -> passages (labelled or not)
    gaps: list[str] = Field(default_factory=list)

    def matrix(self) -> list[list[int]]:
        return [[self.counts.get(lab, {}).get(col, 0) for col in self.columns] for lab in self.labels]


def coverage(
    store: VectorStore, frameworks: Frameworks, by: str = "country", filters: SearchFilters | None = None,
    sparse_share: float = 0.02,
) -> Coverage:  # fmt: skip
    """Count labelled passages; a cell is a gap when it holds under ``sparse_share`` of that column's passages."""
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {sorted(GROUPINGS)}")
    key = GROUPINGS[by]
    labels = [lab.id for lab in frameworks.labels]
    counts: dict[str, Counter] = {lab: Counter() for lab in labels}
    totals: Counter = Counter()
    for point in store.scroll(filters):
        value = point.payload.get(key)
        columns_of = [str(v) for v in value] if isinstance(value, list) else [str(value or "unknown")]
        for column in columns_of:
            totals[column] += 1
            for lab in point.payload.get("labels") or []:
                if lab in counts:
                    counts[lab][column] += 1
    columns = sorted(totals, key=lambda c: -totals[c])
    names = {lab.id: lab.short for lab in frameworks.labels}
    gaps: list[str] = []
    for lab in labels:
        empty = [c for c in columns if counts[lab][c] == 0]
        thin = [c for c in columns if 0 < counts[lab][c] < sparse_share * totals[c]]
        if len(empty) == len(columns):
            gaps.append(f"No passage in the library addresses {lab} ({names[lab]}).")
        elif empty:
            gaps.append(f"{lab} ({names[lab]}): no evidence for {', '.join(empty)}.")
        if thin:
            gaps.append(f"{lab} ({names[lab]}): little evidence for {', '.join(thin)}.")
    return Coverage(
        by=by, labels=labels, label_names=names, columns=columns,
        counts={lab: dict(c) for lab, c in counts.items()}, totals=dict(totals), gaps=gaps,
    )  # fmt: skip


def plot_heatmap(cov: Coverage, path: str, max_columns: int = 30) -> None:
    """A heatmap a policymaker can put on a slide: labels down, countries/documents across, counts in cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    columns = cov.columns[:max_columns]
    data = np.array([[cov.counts.get(lab, {}).get(c, 0) for c in columns] for lab in cov.labels])
    fig_w = max(9.0, 4.5 + 0.55 * len(columns))
    fig, ax = plt.subplots(figsize=(fig_w, 0.45 * len(cov.labels) + 2.2))
    shown = np.log1p(data)
    im = ax.imshow(shown, cmap="YlGnBu", aspect="auto")
    ax.set_xticks(range(len(columns)), [c[:28] for c in columns], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(cov.labels)), [f"{lab} {cov.label_names[lab][:48]}" for lab in cov.labels], fontsize=8)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            value = data[i, j]
            colour = "white" if shown[i, j] > shown.max() * 0.6 else "black"
            ax.text(j, i, "–" if value == 0 else str(value), ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(f"Evidence coverage: passages per objective and {cov.by}", fontsize=10, loc="left")
    fig.colorbar(im, ax=ax, shrink=0.7, label="passages (log scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
