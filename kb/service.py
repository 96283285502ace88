"""The service functions: the one API that the CLI, the Streamlit app, the evaluations and the tests share.

A ``KnowledgeBase`` owns the registry, the store and the models for one KB_HOME; heavy parts load lazily and
once. In the app a single instance lives for the whole process (embedded Qdrant admits one holder).
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from pathlib import Path

import numpy as np

from alignment.context import document_contexts
from alignment.coverage import Coverage, coverage
from alignment.reviews import PassageTags, tag_passages
from index.embedder import Embedder
from index.recentre import Recentring
from index.search import Searcher, SearchResult
from index.sparse import SparseEncoder
from index.store import VectorStore, open_store
from ingest.pipeline import FileDoneFn, Pipeline, ProgressFn, tags_fingerprint
from kb.doctor import DoctorReport, run_doctor
from kb.locking import Synchronized
from kb.records import (
    Answer,
    Comparison,
    Document,
    DocumentMeta,
    FileReport,
    FileStatus,
    IngestProgress,
    IngestReport,
    SavedSearch,
    SearchFilters,
    TagVerdict,
    country_code,
)
from kb.registry import Registry
from kb.settings import Settings, get_settings


class KnowledgeBase:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._ingest_lock = threading.Lock()
        self.ingest_progress = IngestProgress()  # the running (or last) ingest, for the app's banner

    # --- components (lazy, once) ---------------------------------------------------------------------------
    @cached_property
    def registry(self) -> Registry:
        return Synchronized(Registry(self.settings.registry_path), self.lock)  # type: ignore[return-value]

    @cached_property
    def store(self) -> VectorStore:
        return Synchronized(open_store(self.settings), self.lock)  # type: ignore[return-value]

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings)

    @cached_property
    def sparse(self) -> SparseEncoder:
        s = self.settings
        return SparseEncoder(s.bm25_k1, s.bm25_b, s.bm25_avg_len)

    @cached_property
    def tagger(self):
        if not self.settings.frameworks_file.exists():
            return None
        from alignment.tagger import Tagger

        return Tagger(self.settings, self.embedder)

    @cached_property
    def countries(self):
        from alignment.countries import CountryRecognizer

        return CountryRecognizer(self.settings.countries_file)

    @cached_property
    def recentring(self) -> Recentring:
        return Recentring(self.settings, self.registry, self.store)

    @cached_property
    def searcher(self) -> Searcher:
        return Searcher(self.settings, self.store, self.embedder, self.sparse)

    @cached_property
    def answerer(self):
        from answer.answerer import Answerer

        return Answerer(self.settings, self.searcher, self.store, self.embedder)

    @cached_property
    def comparer(self):
        from answer.compare import Comparer

        return Comparer(self.settings, self.answerer, self.store, self.countries)

    def close(self) -> None:
        for name in ("store", "registry"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()

    # --- ingestion -----------------------------------------------------------------------------------------
    def ingest(
        self, paths: list[Path] | None = None, progress: ProgressFn | None = None, file_done: FileDoneFn | None = None
    ) -> IngestReport:
        """Bring the index in line with these files or folders (default: the drop folder)."""
        with self._ingest_lock:  # one ingest at a time per process (watcher and upload page share it)
            pipeline = Pipeline(self.settings, self.registry, self.store, self.embedder, self.tagger, self.countries)
            state = self.ingest_progress = IngestProgress(running=True)

            def on_progress(file: str, stage: str, done: int, total: int) -> None:
                if stage == "scanned":
                    state.files_total = total
                state.current_file, state.stage = file, stage
                if progress:
                    progress(file, stage, done, total)

            def on_file(row: FileReport, done: int, total: int) -> None:
                state.files_done, state.files_total = done, total
                if row.status in (FileStatus.ADDED, FileStatus.UPDATED):
                    state.pages += row.pages
                    state.passages += row.chunks
                    state.ocr_pages += row.ocr_pages
                state.failed += row.status == FileStatus.FAILED
                if file_done:
                    file_done(row, done, total)

            pipeline.progress, pipeline.file_done = on_progress, on_file
            try:
                report = pipeline.run(paths or [self.settings.corpus_dir])
                self.recentring.update()  # language offsets moved: re-centre those passages, no re-embedding
                self.retag()  # frameworks or country data edited since these passages were tagged: no re-embedding
            finally:
                state.running = False
            return report

    def documents(self) -> list[Document]:
        return self.registry.documents()

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check that registry and index agree (stuck, damaged, orphaned, missing); repair when asked."""
        with self._ingest_lock:  # never while this process ingests
            return run_doctor(self, repair)

    # --- retrieval -----------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        k: int | None = None,
        mode: str = "hybrid",
        rerank: bool | None = None,
    ) -> SearchResult:
        return self.searcher.search(query, filters, k=k, mode=mode, rerank=rerank)

    def ask(
        self, question: str, filters: SearchFilters | None = None, mode: str | None = None, strict: bool | None = None
    ) -> Answer:
        """A cited answer (evidence quotes, or an LLM answer when configured), or a reasoned abstention. ``strict``:
        only a sentence the answerability model says answers counts (default: KB_ANSWERABILITY_GATE)."""
        return self.answerer.ask(question, filters, mode, strict)

    # --- alignment -----------------------------------------------------------------------------------------
    def tag(self, texts: list[str]) -> list[PassageTags]:
        """Framework labels with scores and trigger sentences for free texts (the tagger that tags the library)."""
        if self.tagger is None:
            raise RuntimeError(f"no frameworks file at {self.settings.frameworks_file}")
        return [PassageTags(labels=lab, triggers=why) for lab, why in self.tagger.tag_texts_explained(texts)]

    def retag(self, force: bool = False) -> int:
        """Re-tag stored passages whose tags are stale (frameworks, tagger or country data changed), from the
        stored vectors and texts."""
        tagger, countries = self.tagger, self.countries
        fingerprint = tags_fingerprint(tagger, countries)
        stale = [d for d in self.documents() if d.status == "indexed"]
        if not force:
            stale = [d for d in stale if self.registry.fingerprints(d.doc_id)[1] != fingerprint]
        done = 0
        for doc in stale:
            points = list(self.store.scroll(SearchFilters(doc_ids=[doc.doc_id]), with_dense=tagger is not None))
            if points:
                done += self._retag_points(doc, points)
            self.registry.set_labels_fingerprint(doc.doc_id, fingerprint)
        return done

    def _retag_points(self, doc: Document, points: list) -> int:
        """New tags for some of one document's stored passages, from their vectors, texts and document context."""
        contexts = document_contexts([p.payload for p in points], doc.meta.title)
        texts = [p.payload["text"] for p in points]
        updates: list[dict] = [{"about": self.countries.countries(text)} for text in texts]
        if self.tagger is not None:
            vectors = np.asarray([self.recentring.embedded_dense(p.payload) for p in points])
            verdicts = self.registry.tag_reviews(doc.doc_id)
            mine = [verdicts.get(p.id, {}) for p in points]
            for update, tags in zip(updates, tag_passages(self.tagger, vectors, texts, contexts, mine), strict=True):
                update |= tags.payload()
        groups: dict[str, list[str]] = {}
        for point, update in zip(points, updates, strict=True):
            groups.setdefault(json.dumps(update, sort_keys=True), []).append(point.id)
        for key, ids in groups.items():  # one write per distinct tag set, not per passage
            self.store.set_payload(ids, json.loads(key))
        return len(points)

    def review_tag(self, doc_id: str, chunk_id: str, label: str, verdict: TagVerdict | None) -> dict:
        """Staff confirm or reject one tag of one passage (``None`` withdraws the verdict); the passage is re-tagged
        at once and every later re-tag respects the verdict. Returns the passage's new tags (payload keys)."""
        if self.tagger is None or label not in self.tagger.label_ids:
            raise ValueError(f"unknown framework label {label!r}")
        with self._exclusive("review a tag"):
            doc = self.registry.get(doc_id)
            stored = self.store.scroll(SearchFilters(doc_ids=[doc_id]), with_dense=True)
            points = [p for p in stored if p.id == chunk_id]
            if doc is None or not points:
                raise KeyError(f"no passage {chunk_id!r} in document {doc_id!r}")
            self.registry.review_tag(doc_id, chunk_id, label, verdict)
            self._retag_points(doc, points)
        [fresh] = [p for p in self.store.scroll(SearchFilters(doc_ids=[doc_id])) if p.id == chunk_id]
        return {k: fresh.payload.get(k) for k in ("labels", "label_scores", "label_triggers", "label_reviews")}

    def document_passages(self, doc_id: str) -> list[dict]:
        """One document's passages in reading order, as stored (the Library page reviews their tags)."""
        points = sorted(self.store.scroll(SearchFilters(doc_ids=[doc_id])), key=lambda p: p.payload.get("position", 0))
        return [p.payload | {"chunk_id": p.id} for p in points]

    def countries_discussed(self, texts: list[str]) -> list[dict[str, str]]:
        """For free texts, each country discussed → its first mention as written (the same tagger as ingest)."""
        return [self.countries.triggers(text) for text in texts]

    def countries_in_library(self, filters: SearchFilters | None = None) -> dict[str, int]:
        """Documents per country discussed (most first): what the country filters and the Compare page offer."""
        docs: dict[str, set[str]] = {}
        for point in self.store.scroll(filters):
            for code in point.payload.get("about") or []:
                docs.setdefault(code, set()).add(point.payload.get("doc_id", ""))
        return dict(sorted(((c, len(d)) for c, d in docs.items()), key=lambda kv: (-kv[1], kv[0])))

    # --- comparison and saved searches ---------------------------------------------------------------------
    def compare(
        self, question: str, countries: list[str] | None = None, filters: SearchFilters | None = None,
        every_country: bool = False,
    ) -> Comparison:  # fmt: skip
        """One row per country (chosen, or those the library discusses most, or all of them): its best evidence,
        or none."""
        return self.comparer.compare(question, countries, filters, every_country)

    def save_search(
        self, name: str, query: str, filters: SearchFilters | None = None, kind: str = "search",
        countries: list[str] | None = None,
    ) -> SavedSearch:  # fmt: skip
        if kind not in ("search", "compare"):
            raise ValueError("kind must be search or compare")
        if not name.strip() or not query.strip():
            raise ValueError("a saved search needs a name and a query")
        saved = SavedSearch(name=name.strip(), kind=kind, query=query.strip(), filters=filters or SearchFilters(),
                            countries=[country_code(c) for c in countries or []])  # fmt: skip
        return self.registry.save_search(saved)

    def saved_searches(self, with_news: bool = True) -> list[SavedSearch]:
        """Every saved search with the passages added since it was last looked at that it finds relevant (counting
        them runs each search: ``with_news=False`` lists them only)."""
        saved = self.registry.saved_searches()
        return [self._with_news(s) for s in saved] if with_news else saved

    def new_passages(self, name: str) -> list:
        """The hits added since the saved search was last looked at (it is not marked seen here)."""
        saved = self.registry.saved_search(name)
        if saved is None:
            raise KeyError(f"no saved search named {name!r}")
        return self._news(saved)

    def mark_seen(self, name: str) -> None:
        if self.registry.saved_search(name) is None:
            raise KeyError(f"no saved search named {name!r}")
        self.registry.mark_seen(name)

    def delete_saved_search(self, name: str) -> bool:
        return self.registry.delete_saved_search(name)

    def _with_news(self, saved: SavedSearch) -> SavedSearch:
        hits = self._news(saved)
        titles = list(dict.fromkeys(h.title or h.file for h in hits))
        return saved.model_copy(update={"new_passages": len(hits), "new_documents": titles})

    def _news(self, saved: SavedSearch) -> list:
        """Passages of documents added after the last look that the search finds and whose best sentence is
        close to the query (a search always returns something; only real matches count as news)."""
        scope = set(saved.filters.doc_ids)  # a search kept for some documents: only those count
        new_docs = [
            d.doc_id for d in self.documents()
            if d.status == "indexed" and (d.indexed_at or d.added_at) > saved.last_seen_at
            and (not scope or d.doc_id in scope)
        ]  # fmt: skip
        if not new_docs:
            return []
        update: dict = {"doc_ids": new_docs}
        if saved.kind == "compare" and saved.countries:
            update["about"] = saved.countries
        result = self.search(saved.query, saved.filters.model_copy(update=update), k=self.settings.saved_new_candidates)
        ranked = self.answerer.rank_sentences(saved.query, result.query_language, result.hits, result.query_vector)
        best: dict[str, float] = {}
        for sent in ranked:
            best[sent.hit.chunk_id] = max(best.get(sent.hit.chunk_id, -1.0), sent.similarity)
        return [h for h in result.hits if best.get(h.chunk_id, -1.0) >= self.settings.saved_new_min_score]

    def coverage(self, by: str = "country", filters: SearchFilters | None = None) -> Coverage:
        if self.tagger is None:
            raise RuntimeError(f"no frameworks file at {self.settings.frameworks_file}")
        return coverage(self.store, self.tagger.frameworks, by=by, filters=filters)

    # --- library management --------------------------------------------------------------------------------
    def document(self, doc_id: str) -> Document | None:
        """One registered document by id (None when unknown)."""
        return self.registry.get(doc_id)

    def failed_files(self) -> list[dict[str, str]]:
        """Files the last ingests refused, with the reason (they hold no document)."""
        return [{"path": p, "sha256": sha, "error": err} for p, (sha, err) in sorted(self.registry.failures().items())]

    def update_metadata(self, doc_id: str, meta: dict | DocumentMeta) -> Document:
        """Correct a document's metadata: written to metadata.csv (so a re-ingest keeps it), to the registry, and to
        its passages' payload in place (no re-embedding). Fields left out keep their value. An emptied field is
        empty now, but metadata.csv cannot pin an empty value: a later re-indexing of the file guesses it again."""
        from kb.library import write_override

        fields = meta.model_dump() if isinstance(meta, DocumentMeta) else dict(meta)
        with self._exclusive("edit metadata"):
            doc = self.registry.get(doc_id)
            if doc is None:
                raise KeyError(f"no document {doc_id}")
            new = DocumentMeta.model_validate(doc.meta.model_dump() | fields)
            changed = {k: v for k, v in new.model_dump().items() if v != getattr(doc.meta, k)}
            if not changed:
                return doc
            write_override(self.settings.metadata_csv, doc, changed)
            self.registry.update_meta(doc_id, new)
            ids = sorted(self.store.point_ids(doc_id))
            self.store.set_payload(ids, {"title": new.title, "publisher": new.publisher, "year": new.year,
                                         "country": new.country, "doc_type": new.doc_type,
                                         "doc_language": new.language})  # fmt: skip
            return self.registry.get(doc_id)  # type: ignore[return-value]

    def remove_document(self, doc_id: str) -> dict[str, list[str]]:
        """Remove a document: its files in the drop folder, its points and its registry rows.

        Files outside the drop folder are never deleted (they are listed under ``kept``: a later ingest of that
        folder would add them again)."""
        with self._exclusive("remove a document"):
            doc = self.registry.get(doc_id)
            if doc is None:
                raise KeyError(f"no document {doc_id}")
            library = self.settings.corpus_dir.resolve()
            removed, kept = [], []
            for path in doc.paths:
                p = Path(path)
                if library in p.resolve().parents:
                    try:
                        p.unlink(missing_ok=True)
                        removed.append(path)
                    except OSError as exc:
                        kept.append(f"{path} ({exc.strerror or exc})")
                else:
                    kept.append(f"{path} (outside the library folder)")
            self.store.delete_doc(doc_id)
            for path in doc.paths:
                self.registry.clear_failure(path)
            self.registry.delete_document(doc_id)
            return {"removed": removed, "kept": kept}

    def _exclusive(self, what: str, timeout_s: float = 60.0):
        """Hold the ingest lock for a library change (never while this process ingests); give up after a while."""
        from contextlib import contextmanager

        @contextmanager
        def held():
            if not self._ingest_lock.acquire(timeout=timeout_s):
                raise TimeoutError(f"an ingest is running; could not {what} within {timeout_s:.0f} s, try again")
            try:
                yield
            finally:
                self._ingest_lock.release()

        return held()
