"""Tagging stored passages: the tagger's labels and trigger sentences, with staff's verdicts applied on top (a
confirmed tag stays or is added, a rejected one goes), at every ingest and re-tag."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from alignment.context import PassageContext
from kb.records import TagVerdict

if TYPE_CHECKING:
    from alignment.tagger import Tagger

CONFIRMED_SCORE = 1.0  # the score a confirmed tag carries (staff are certain; ranking by score puts it first)


class PassageTags(BaseModel):
    """One passage's framework tags as stored in its payload."""

    labels: dict[str, float] = Field(default_factory=dict)
    triggers: dict[str, str] = Field(default_factory=dict)
    reviews: dict[str, TagVerdict] = Field(default_factory=dict)

    def payload(self) -> dict:
        return {
            "labels": sorted(self.labels), "label_scores": self.labels, "label_triggers": self.triggers,
            "label_reviews": {k: str(v) for k, v in self.reviews.items()},
        }  # fmt: skip


def reviewed(labels: dict[str, float], triggers: dict[str, str], verdicts: dict[str, TagVerdict]) -> PassageTags:
    """The tagger's labels and trigger sentences with staff's verdicts applied."""
    labels, triggers = dict(labels), dict(triggers)
    for label, verdict in verdicts.items():
        if verdict == TagVerdict.REJECTED:
            labels.pop(label, None)
            triggers.pop(label, None)
        else:
            labels[label] = CONFIRMED_SCORE
    ordered = dict(sorted(labels.items(), key=lambda kv: -kv[1]))
    return PassageTags(labels=ordered, triggers=triggers, reviews=dict(verdicts))


def tag_passages(
    tagger: Tagger, vectors: np.ndarray, texts: list[str], contexts: list[PassageContext],
    verdicts: list[dict[str, TagVerdict]],
) -> list[PassageTags]:  # fmt: skip
    """Each passage's tags from its stored vector, text and document context, staff's verdicts applied."""
    if not texts:
        return []
    tags = tagger.tag_vectors(vectors, texts, contexts=contexts)
    triggers = tagger.triggers(vectors, texts, tags, contexts)
    return [reviewed(*item) for item in zip(tags, triggers, verdicts, strict=True)]
