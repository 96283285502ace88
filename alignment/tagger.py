"""Multi-label tagging of passages against the framework labels, from the passages' own embeddings and text.

Two small logistic-regression stages: a gate (does this passage carry policy substance at all, or is it a
contents page, credits, references?) and one classifier per label. Both read the same features of a passage:
its e5 vector standardised per dimension (e5 squeezes all cosines into 0.8–0.9, so raw unit vectors leave the
classifiers little to work with), character 3–5-gram and word 1–2-gram TF-IDF of its text, how many of each
label's key terms (frameworks file, all languages) it contains, its cosine to each label's prototype centroid
(description, examples and key terms, embedded) and the shape of its text (function-word share, digits,
capitals, years, "et al.", table bars: a reference list on telemonitoring reads like telemonitoring to the other
features). Each label's classifier learns from all passages, furniture included, and a passage keeps a label
only when the gate and that label's classifier both say so: label models that saw policy passages alone called
any list of objectives a confident "SO2", and the gate had to stop them on its own.
They are trained on the labelled passages (``eval/data/alignment_labels.jsonl``), the examples and
descriptions of each label and background texts.
Everything a tag needs is the passage text and the vector already in the index, so re-tagging after a
frameworks edit needs no re-embedding of passages (only the frameworks' own texts are embedded, and cached).
A passage is also read in its document's light (``alignment.context``: the words and key terms of its document's
title and section heading), and its e5 vector is centred on its language's mean (estimated over the training
documents, as ``index.centring`` does for the index) so the e5 block reads topic rather than language.
``kb eval alignment`` reports it on documents it never saw first (by-document CV), then on random folds; the
numbers and what was tried are in the README ("Framework tags").
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import logging
import os
import pickle
import re
import unicodedata
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, Field
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from alignment.context import PassageContext
from alignment.frameworks import Frameworks, load_frameworks
from index.centring import estimate, part_means
from index.embedder import Embedder
from index.sparse import fold, stopwords
from index.text import sentence_spans
from kb.settings import Settings

log = logging.getLogger(__name__)

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


# In the fingerprint: a change here re-tags stored passages and refits the cached models. Change it with any change
# to the features or to how the models are fitted.
FEATURES_VERSION = "e5z-langcentred+char35+word12+keyterms+prototypes+shape+section/4"
MODELS_KEPT = 4  # fitted taggers kept in the model cache (one per frameworks file / training set / settings)
KEY_TERM_WEIGHT = 0.5  # relative weight of the key-term and prototype blocks (e5 block and TF-IDF block: 1)
PROTOTYPE_WEIGHT = 0.5
# The text-shape block tells prose from lists (references, glossaries, contents): kb eval alignment at 0.15,
# micro-F1 .669 -> .688 and unlabelled kept 72% -> 78% (5-fold CV; .669 -> .696 and .649 -> .652 on two other
# fold seeds, kept up 4-7 points on each); anywhere in 0.1-0.5 gains, 1.0 loses the gain.
SHAPE_WEIGHT = 0.15
# The document-context blocks (alignment.context): words of the title and section heading, and each label's key
# terms in them. Chosen on the by-document split, where key terms of the neighbouring passages added nothing and the
# document type lost (README, "Framework tags").
SECTION_WEIGHT = 0.25
SECTION_TERM_WEIGHT = 0.25
# Language-centring of the e5 block (index.centring): per-language means shrunk toward the training mean by this
# many pseudo-documents, a document's mean counting in full from this many passages.
CENTRING_PRIOR_DOCUMENTS = 2.0
CENTRING_FULL_WEIGHT = 20
FUNCTION_WORDS = frozenset(
    w for lang in ("en", "fr", "de", "es", "it", "no", "pl", "nl", "pt") for w in stopwords(lang)
)  # the NLTK lists of the Region's languages (one without a list adds nothing)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return re.sub(r"\s+", " ", text)


def _stems(term: str) -> tuple[tuple[str, bool], ...]:
    """A key term as (stem, is_prefix) per word: words over 4 letters cut to ~80% and matched as the start of a
    token (so inflected forms and compounds match), shorter words matched whole ("KI" must not match "kinds").
    Language-blind on purpose: each language's Snowball stems (index.sparse) scored lower in kb eval alignment
    (micro-F1 .657 exact stems, .652 stem prefixes, against .669), losing compounds and derivations."""
    words = re.findall(r"\w+", _normalise(term))
    return tuple((w[: max(4, int(len(w) * 0.8))], True) if len(w) > 4 else (w, False) for w in words)


def _has_term(stems: tuple[tuple[str, bool], ...], tokens: list[str], starts: dict[str, list[int]]) -> bool:
    """Whether the term's words occur as consecutive tokens of the text."""
    for i in starts.get(stems[0][0][:4], ()):
        if i + len(stems) <= len(tokens) and all(
            tokens[i + k].startswith(stem) if prefix else tokens[i + k] == stem
            for k, (stem, prefix) in enumerate(stems)
        ):
            return True
    return False


class TagFeatures:
    """Passage (vector, text) -> one sparse feature row; fitted on the training passages."""

    def __init__(self, frameworks: Frameworks, prototypes: np.ndarray) -> None:
        self.prototypes = prototypes  # [labels, dim] unit centroids of each label's prototype texts
        self.terms = [  # per label: its key terms in all languages, as word stems
            sorted({st for ts in lab.key_terms.values() for t in ts if (st := _stems(t))}) for lab in frameworks.labels
        ]

    def key_term_counts(self, texts: list[str]) -> np.ndarray:
        """log(1 + number of distinct key terms of each label found in the text)."""
        out = np.zeros((len(texts), len(self.terms)), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = re.findall(r"\w+", _normalise(text))
            starts: dict[str, list[int]] = {}
            for k, tok in enumerate(tokens):
                starts.setdefault(tok[:4], []).append(k)
            for j, terms in enumerate(self.terms):
                out[i, j] = sum(_has_term(st, tokens, starts) for st in terms)
        return np.log1p(out)

    @staticmethod
    def shape(texts: list[str]) -> np.ndarray:
        """How prose-like a text is: function-word share, digits, capitals, years, 'et al.', table bars, dots."""
        out = np.zeros((len(texts), 7), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+", text)
            n = max(len(words), 1)
            folded = [fold(w) for w in words]  # FUNCTION_WORDS are accent-folded, like the BM25 stopwords
            out[i] = [
                sum(w in FUNCTION_WORDS for w in folded) / n,
                sum(c.isdigit() for c in text) / max(len(text), 1),
                sum(w[:1].isupper() for w in words) / n,
                len(re.findall(r"\b(?:19|20)\d\d\b", text)) / n,
                len(re.findall(r"\bet al\b", text)) / n,
                text.count("|") / n,
                len(re.findall(r"\.{3,}|…", text)) / n,
            ]
        return out

    def fit(
        self, vectors: np.ndarray, texts: list[str], contexts: list[PassageContext], documents: list[str]
    ) -> TagFeatures:
        """Fit the feature scales on the training passages (``documents``: each one's file, for the centring)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        rows_of: dict[str, list[int]] = {}
        for i, doc in enumerate(documents):
            rows_of.setdefault(doc, []).append(i)
        parts = [
            part
            for doc, rows in rows_of.items()
            for part in part_means(doc, "tagger", vectors[rows], [contexts[i].language for i in rows])
            if part.language
        ]
        offsets = estimate(parts, CENTRING_PRIOR_DOCUMENTS, CENTRING_FULL_WEIGHT)
        self.offsets = {lang: v for (_, lang), v in offsets.items()}
        centred = self.centred(vectors, contexts)
        shape = self.shape(texts)
        self.shape_mean, self.shape_scale = shape.mean(0), shape.std(0) + 1e-6
        self.mean, self.scale = centred.mean(0), centred.std(0) + 1e-6
        self.tfidf = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2, preprocessor=_normalise
        ).fit(texts)
        self.words = TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=2, preprocessor=_normalise
        ).fit(texts)
        sections = [c.section for c in contexts]
        self.section_words = TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=2, preprocessor=_normalise
        ).fit([t or "-" for t in sections])
        cos = vectors @ self.prototypes.T
        self.cos_mean, self.cos_scale = cos.mean(0), cos.std(0) + 1e-6
        return self

    def centred(self, vectors: np.ndarray, contexts: list[PassageContext]) -> np.ndarray:
        """The vectors less their language's offset: the e5 block then reads topic, not language."""
        dim = vectors.shape[1]
        none = np.zeros(dim, dtype=np.float32)
        return np.asarray(vectors, dtype=np.float32) - np.array(
            [self.offsets.get(c.language, none) for c in contexts], dtype=np.float32
        ).reshape(len(contexts), dim)

    def blocks(self, vectors: np.ndarray, texts: list[str], contexts: list[PassageContext] | None = None) -> list:
        """The feature blocks: standardised language-centred e5 vector, char n-gram and word (1-2) TF-IDF, key-term
        counts, prototype cosines, text shape; then the document context: title and heading words and key terms."""
        if len(vectors) != len(texts):
            raise ValueError("the tagger needs each passage's text along with its vector")
        contexts = contexts or [PassageContext() for _ in texts]
        vectors = np.asarray(vectors, dtype=np.float32)
        dense = (self.centred(vectors, contexts) - self.mean) / self.scale / np.sqrt(vectors.shape[1])
        cos = (vectors @ self.prototypes.T - self.cos_mean) / self.cos_scale / np.sqrt(len(self.prototypes))
        terms = self.key_term_counts(texts) * KEY_TERM_WEIGHT
        shape = (self.shape(texts) - self.shape_mean) / self.shape_scale * SHAPE_WEIGHT
        sections = [c.section for c in contexts]
        section = self.section_words.transform([t or "-" for t in sections]) * SECTION_WEIGHT
        section_terms = self.key_term_counts(sections) * SECTION_TERM_WEIGHT
        return [
            dense, self.tfidf.transform(texts), self.words.transform(texts), terms, cos * PROTOTYPE_WEIGHT, shape,
            section, section_terms,
        ]  # fmt: skip

    def transform(
        self, vectors: np.ndarray, texts: list[str], contexts: list[PassageContext] | None = None
    ) -> sparse.csr_matrix:
        return sparse.hstack([sparse.csr_matrix(b) for b in self.blocks(vectors, texts, contexts)]).tocsr()

    def linear(
        self, vectors: np.ndarray, texts: list[str], weights: np.ndarray, bias: np.ndarray,
        contexts: list[PassageContext] | None = None,
    ) -> np.ndarray:  # fmt: skip
        """transform(...) @ weights + bias, block by block (no sparse stacking: a single passage costs ~1 ms)."""
        out, start = np.array(bias, dtype=np.float64)[None, :].repeat(len(texts), 0), 0
        for block in self.blocks(vectors, texts, contexts):
            width = block.shape[1]
            out += block @ weights[start : start + width]
            start += width
        return out


def _write_atomically(path: Path, data: bytes) -> None:
    """Write under a temporary name, then rename: a concurrent process never loads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(path)


class Models(NamedTuple):
    """A fitted tagger: the feature map, and one linear model per column (gate first, then each label)."""

    features: TagFeatures
    weights: np.ndarray  # [features, 1 + labels]; a label column is zero when it had no positive (or no negative)
    bias: np.ndarray  # [1 + labels]; -inf for such a label, so its probability is 0


class LabelledText(BaseModel):
    text: str
    labels: list[str]
    id: str = ""
    file: str = ""  # the corpus file the passage was cut from
    context: PassageContext = Field(default_factory=PassageContext)


def read_labelled(path: Path, contexts: Path | None = None) -> list[LabelledText]:
    """Labelled passages, each with its document context: inline (``context``) or by id from ``contexts``."""
    if not path.exists():
        return []
    by_id = {}
    if contexts is not None and contexts.exists():
        for line in contexts.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                by_id[row.pop("id")] = PassageContext(**row)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for r in rows:
        context = PassageContext(**r["context"]) if "context" in r else by_id.get(r.get("id", ""), PassageContext())
        if not context.language:
            context = context.model_copy(update={"language": r.get("lang", "")})
        out.append(LabelledText(
            text=r["text"], labels=r.get("labels", []), id=r.get("id", ""), file=r.get("file", ""), context=context,
        ))  # fmt: skip
    return out


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
        self.passages = (
            read_labelled(settings.alignment_training_file, settings.alignment_context_file)
            if training is None
            else training
        )

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
            FEATURES_VERSION,
        ]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def training_set(self) -> list[LabelledText]:
        """Labelled passages, then each label's description and examples, then background (no label)."""
        items = [p for p in self.passages if set(p.labels) <= set(self.label_ids)]
        for lab in self.frameworks.labels:
            items += [LabelledText(text=t, labels=[lab.id]) for t in [f"{lab.short}. {lab.description}", *lab.examples]]
        items += [LabelledText(text=t, labels=[]) for t in self.frameworks.background or DEFAULT_BACKGROUND]
        return items

    @property
    def _cache_dir(self) -> Path:
        """Beside the converted model: what is cached here is a pure function of its key, shared by every library."""
        return self.settings.resolved_model_cache() / "alignment"

    def embed_cached(self, texts: list[str]) -> np.ndarray:
        """Embeddings of training, evaluation or prototype texts (the training set: minutes of model time here)."""
        key = hashlib.sha256(json.dumps([self.embedder.fingerprint, texts]).encode()).hexdigest()[:16]
        cache = self._cache_dir / f"{key}.npy"
        if cache.exists():
            return np.load(cache)
        vectors = self.embedder.encode_passages(texts)
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        _write_atomically(cache, buffer.getvalue())
        return vectors

    @cached_property
    def prototypes(self) -> np.ndarray:
        """[labels, dim]: unit centroid of each label's prototype texts (description, examples, key terms)."""
        labels = self.frameworks.labels
        texts = [lab.prototypes() for lab in labels]
        vectors = self.embed_cached([t for ts in texts for t in ts])
        bounds = np.cumsum([0, *[len(ts) for ts in texts]])
        centroids = np.array([vectors[a:b].mean(0) for a, b in itertools.pairwise(bounds)])
        return centroids / np.linalg.norm(centroids, axis=1, keepdims=True)

    @cached_property
    def models(self) -> Models:
        """Fitted once per fingerprint and kept on disk: the fit takes ~8 s on 2 cores (2,144 passages), which
        `kb tag`, every ingest and every app start would otherwise pay."""
        cache = self._cache_dir / f"models-{self.fingerprint}.pkl"
        if cache.exists():
            try:
                with cache.open("rb") as fh:
                    models = pickle.load(fh)  # written by this code below, never taken from a user
                if isinstance(models, Models):
                    return models
            except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError) as exc:
                log.warning("refitting the tagger: its cached models could not be read (%s)", exc)
        items = self.training_set()
        models = self.fit(self.embed_cached([i.text for i in items]), items)
        _write_atomically(cache, pickle.dumps(models))
        with contextlib.suppress(OSError):  # another process may be pruning too
            stale = sorted(self._cache_dir.glob("models-*.pkl"), key=lambda f: f.stat().st_mtime)[:-MODELS_KEPT]
            for old in stale:  # ~11 MB each; other frameworks files or training sets may still want the newest few
                old.unlink(missing_ok=True)
        return models

    def fit(self, vectors: np.ndarray, items: list[LabelledText]) -> Models:
        c = self.settings.tag_regularisation
        y = np.array([[lab in i.labels for lab in self.label_ids] for i in items])
        substantive = y.any(axis=1)
        texts, contexts = [i.text for i in items], [i.context for i in items]
        features = TagFeatures(self.frameworks, self.prototypes).fit(
            np.asarray(vectors, dtype=np.float32), texts, contexts, [i.file for i in items]
        )
        x = features.transform(vectors, texts, contexts)
        weights = np.zeros((x.shape[1], 1 + len(self.label_ids)))
        bias = np.full(1 + len(self.label_ids), -np.inf)
        gate = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, substantive)
        weights[:, 0], bias[0] = gate.coef_[0], gate.intercept_[0]
        for j in range(len(self.label_ids)):
            target = y[:, j]  # all passages: a label's model learns to say no to furniture as well
            if target.all() or not target.any():
                continue
            model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, target)
            weights[:, 1 + j], bias[1 + j] = model.coef_[0], model.intercept_[0]
        return Models(features, weights, bias)

    def probabilities(
        self, vectors: np.ndarray, texts: list[str], models: Models | None = None,
        contexts: list[PassageContext] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """(gate probability [n], label probabilities [n, labels]) from the passages' vectors and texts."""
        m = models or self.models
        with np.errstate(over="ignore"):
            prob = 1.0 / (1.0 + np.exp(-m.features.linear(vectors, texts, m.weights, m.bias, contexts)))
        return prob[:, 0], prob[:, 1:].astype(np.float32)

    def decide(self, gate: np.ndarray, probs: np.ndarray) -> list[dict[str, float]]:
        """A passage the gate lets through keeps its best labels that clear the label threshold (maybe none):
        both the gate and the label's own model must find policy substance."""
        s = self.settings
        out: list[dict[str, float]] = []
        for g, row in zip(gate, probs, strict=True):
            labels: dict[str, float] = {}
            if g >= s.tag_gate_threshold:
                for j in np.argsort(-row)[: s.tag_max_labels]:
                    if row[j] >= s.tag_label_threshold:
                        labels[self.label_ids[j]] = round(float(row[j]), 4)
            out.append(labels)
        return out

    def tag_vectors(
        self, vectors: np.ndarray, texts: list[str], models: Models | None = None,
        contexts: list[PassageContext] | None = None,
    ) -> list[dict[str, float]]:  # fmt: skip
        """Tags of passages from their stored vectors, their texts and their document context (no embedding)."""
        if len(vectors) == 0:
            return []
        return self.decide(*self.probabilities(vectors, texts, models, contexts))

    def triggers(
        self, vectors: np.ndarray, texts: list[str], tags: list[dict[str, float]],
        contexts: list[PassageContext] | None = None,
    ) -> list[dict[str, str]]:  # fmt: skip
        """For each tag, the passage's sentence that speaks for it most: the label's model read on each sentence
        in turn (with the passage's vector and context, which all its sentences share), so a policymaker sees why
        a passage counts for an objective."""
        contexts = contexts or [PassageContext() for _ in texts]
        m, column = self.models, {lab: j for j, lab in enumerate(self.label_ids)}
        out: list[dict[str, str]] = []
        for vector, text, labels, context in zip(vectors, texts, tags, contexts, strict=True):
            if not labels:
                out.append({})
                continue
            sentences = [text[a:b].strip() for a, b in sentence_spans(text)] or [text]
            sentences = [s for s in sentences if s] or [text]
            cols = [1 + column[lab] for lab in labels]
            scores = m.features.linear(
                np.repeat(np.asarray(vector, dtype=np.float32)[None, :], len(sentences), 0), sentences,
                m.weights[:, cols], m.bias[cols], [context] * len(sentences),
            )  # fmt: skip
            out.append({lab: sentences[int(np.argmax(scores[:, k]))] for k, lab in enumerate(labels)})
        return out

    def tag_texts(self, texts: list[str]) -> list[dict[str, float]]:
        return self.tag_vectors(self.embedder.encode_passages(texts), texts)

    def tag_texts_explained(self, texts: list[str]) -> list[tuple[dict[str, float], dict[str, str]]]:
        """Tags of free texts, each with its trigger sentences (``kb tag``)."""
        vectors = self.embedder.encode_passages(texts)
        tags = self.tag_vectors(vectors, texts)
        return list(zip(tags, self.triggers(vectors, texts, tags), strict=True))
