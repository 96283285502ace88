"""Load the frameworks file (YAML, editable by staff) into typed labels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator


class Label(BaseModel):
    id: str
    short: str
    description: str
    key_terms: dict[str, list[str]] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)
    threshold: float | None = None  # chosen on the labelled set; None: the tagger's default
    framework: str = ""

    @field_validator("key_terms", mode="before")
    @classmethod
    def _languages_as_strings(cls, v: dict) -> dict:
        # YAML 1.1 reads an unquoted `no:` key as False; Norwegian is what was meant
        return {("no" if k is False else str(k)): list(terms) for k, terms in (v or {}).items()}

    def prototypes(self) -> list[str]:
        """Texts whose embeddings stand for this label: description, examples, and key terms per language."""
        texts = [f"{self.short}. {self.description}", *self.examples]
        texts += [f"{self.short}: " + "; ".join(terms) for terms in self.key_terms.values() if terms]
        return texts


class Framework(BaseModel):
    id: str
    name: str
    kind: str = ""
    labels: list[Label]


class Frameworks(BaseModel):
    frameworks: list[Framework]
    background: list[str] = Field(default_factory=list)  # passages that fit no label (contents, credits...)
    fingerprint: str = ""

    @property
    def labels(self) -> list[Label]:
        return [label for fw in self.frameworks for label in fw.labels]

    def label(self, label_id: str) -> Label:
        return next(lab for lab in self.labels if lab.id == label_id)


def load_frameworks(path: Path) -> Frameworks:
    raw = path.read_bytes()
    data = yaml.safe_load(raw) or {}
    fws = Frameworks(**data)
    ids = [lab.id for lab in fws.labels]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"{path}: duplicate label ids {sorted(dupes)}")
    for fw in fws.frameworks:
        for lab in fw.labels:
            lab.framework = fw.id
    fws.fingerprint = hashlib.sha256(raw).hexdigest()[:16]
    return fws
