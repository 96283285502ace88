"""The ingestion run: scan folders, compare with the registry, index what changed, report every file.

Safety rules (a library is fed for years): a document is marked ``indexing`` in the registry before its first
point is written and ``indexed`` only after the last; point ids are stable, so a re-run after a crash overwrites
rather than duplicates, and stale ids are deleted only after the new points are in. A file that fails is
reported with its reason and never stops the batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alignment.context import document_contexts
from alignment.reviews import tag_passages
from index.centring import Offsets, PartMean
from index.embedder import Embedder
from index.recentre import centred_point, document_means
from index.sentences import spans_of
from index.sparse import TERMS_VERSION, SparseEncoder
from index.store import StoredPoint, VectorStore
from ingest.chunker import chunk_document
from ingest.errors import IngestError
from ingest.filetypes import sha256_file
from ingest.language import detect, majority
from ingest.metadata import build_metadata, read_table
from ingest.ocr import ocr_available
from ingest.readers import read_pages
from kb.records import Chunk, Document, FileReport, FileStatus, IngestReport, SearchFilters
from kb.registry import INDEXED, INDEXING, Registry
from kb.settings import Settings

log = logging.getLogger(__name__)
ProgressFn = Callable[[str, str, int, int], None]  # (file, stage, done, total)
FileDoneFn = Callable[[FileReport, int, int], None]  # (its report row, files done, files in the run)
UPSERT_BATCH = 64
INDEX_LAYOUT = "sent1"  # per-chunk sentence vectors (late-chunked) and whole-identifier BM25 terms


def doc_id_for(sha256: str) -> str:
    return sha256[:16]


def shown(path: Path) -> str:
    """The path as text that can be printed and stored: bytes that are not UTF-8 appear as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass
class Pipeline:
    settings: Settings
    registry: Registry
    store: VectorStore
    embedder: Embedder
    tagger: object | None = None  # alignment.tagger.Tagger; optional so ingestion works without frameworks
    countries: object | None = None  # alignment.countries.CountryRecognizer: the countries each passage discusses
    progress: ProgressFn = field(default=lambda *_: None)
    file_done: FileDoneFn = field(default=lambda *_: None)

    def __post_init__(self) -> None:
        s = self.settings
        self.sparse = SparseEncoder(s.bm25_k1, s.bm25_b, s.bm25_avg_len)
        self._catalogue = read_table(s.catalogue_csv)
        self._overrides = read_table(s.metadata_csv)
        self.offsets = Offsets()  # the language offsets new points are centred with (read at each run)

    # --- the run -------------------------------------------------------------------------------------------
    @property
    def vectors_fingerprint(self) -> str:
        s = self.settings
        # bump INDEX_LAYOUT when what is stored per chunk changes: documents indexed before are re-embedded
        return f"{self.embedder.fingerprint}|chunk{s.chunk_tokens}/{s.chunk_overlap_tokens}|{INDEX_LAYOUT}"

    @property
    def fingerprint(self) -> str:
        """How a document's points were made: the vectors' recipe, then the BM25 terms' (``TERMS_VERSION``)."""
        return f"{self.vectors_fingerprint}|{TERMS_VERSION}"

    def scan(self, roots: list[Path]) -> list[Path]:
        files: dict[Path, None] = {}  # ordered, each file once even when roots overlap
        for root in roots:
            candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for p in candidates:
                rel_parts = p.relative_to(root).parts if root.is_dir() else (p.name,)
                if any(part.startswith((".", "~$")) for part in rel_parts) or p.name in self.settings.ignore_names:
                    continue
                files[Path(os.path.abspath(p))] = None
        return list(files)

    def run(self, roots: list[Path]) -> IngestReport:
        roots = [Path(os.path.abspath(r)) for r in roots]  # 'a/b/../c' is 'a/c': one path per file
        for root in roots:
            if not root.exists():
                raise FileNotFoundError(f"no such file or folder: {root}")
        report = IngestReport()
        self.offsets = self.registry.offsets() if self.settings.centring else Offsets()
        self._recover()
        files = self.scan(roots)
        present = {str(p) for p in files}
        gone = {p: d for p, (d, _, _) in self.registry.path_map().items() if p not in present}
        self._remove_missing(roots, present)

        known = self.registry.path_map()
        failures = self.registry.failures()
        seen_in_batch: dict[str, str] = {}  # sha256 -> first path in this run
        self.progress("", "scanned", 0, len(files))
        for number, path in enumerate(files, 1):
            started = time.perf_counter()
            try:
                row = self._ingest_file(path, known, failures, seen_in_batch)
            except IngestError as exc:
                row = FileReport(path=shown(path), status=FileStatus.FAILED, error=str(exc))
            except Exception as exc:
                log.exception("unexpected failure on %s", shown(path))
                row = FileReport(path=shown(path), status=FileStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            row.seconds = round(time.perf_counter() - started, 2)
            report.files.append(row)
            self.file_done(row, number, len(files))
        before = len(report.files)
        self._drop_orphans(report)
        for row in report.files[before:]:  # name removed documents by the path they had
            row.path = next((p for p, d in gone.items() if d == row.doc_id), row.path)
        return report

    # --- housekeeping --------------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Documents a crash left in ``indexing`` lose their partial points; their files index again."""
        for doc in self.registry.documents(status=INDEXING):
            self.store.delete_doc(doc.doc_id)
            if doc.paths:
                self.registry.set_status(doc.doc_id, "pending", "interrupted; re-indexing")
            else:
                self.registry.delete_document(doc.doc_id)

    def _remove_missing(self, roots: list[Path], present: set[str]) -> None:
        """Forget paths that vanished from the scanned folders (their documents go in ``_drop_orphans``)."""
        for path in self.registry.path_map():
            p = Path(path)
            if path not in present and any(p == r or r in p.parents for r in roots):
                self.registry.remove_path(path)
        for path in list(self.registry.failures()):
            p = Path(path)
            if path not in present and any(p == r or r in p.parents for r in roots):
                self.registry.clear_failure(path)

    def _drop_orphans(self, report: IngestReport) -> None:
        """Documents no file carries any more leave the index (after renames had their chance to match)."""
        for doc_id in self.registry.orphans():
            doc = self.registry.get(doc_id)
            self.store.delete_doc(doc_id)
            self.registry.delete_document(doc_id)
            if doc is not None:
                report.files.append(
                    FileReport(path=doc.error or doc.meta.title, status=FileStatus.REMOVED, doc_id=doc_id,
                               pages=doc.pages, language=doc.meta.language, title=doc.meta.title)
                )  # fmt: skip

    # --- one file ------------------------------------------------------------------------------------------
    def _ingest_file(
        self,
        path: Path,
        known: dict[str, tuple[str, int, float]],
        failures: dict[str, tuple[str, str]],
        seen_in_batch: dict[str, str],
    ) -> FileReport:
        key = str(path)
        if shown(path) != key:
            raise IngestError("file name is not valid UTF-8 (an old Windows or zip encoding?): rename the file")
        stat = path.stat()
        if stat.st_size > self.settings.max_file_mb * 1024 * 1024:
            raise IngestError(
                f"file too large: {stat.st_size / 1e6:.0f} MB (limit {self.settings.max_file_mb} MB, KB_MAX_FILE_MB)"
            )
        sha = sha256_file(path)
        doc_id = doc_id_for(sha)
        previous = known.get(key)
        existing = self.registry.get(doc_id)
        current = existing is not None and existing.status == INDEXED
        stored = self.registry.fingerprints(doc_id)[0] if current else ""
        fresh = current and stored == self.fingerprint
        if current and not fresh and vectors_part(stored) == self.vectors_fingerprint:
            self._reencode_terms(doc_id)  # only the BM25 terms changed: the vectors stay
            fresh = True

        if previous and previous[0] == doc_id and fresh:
            return self._row(key, FileStatus.UNCHANGED, existing)
        if key in failures and failures[key][0] == sha:
            raise IngestError(failures[key][1])
        if fresh and (sha in seen_in_batch or previous is None or previous[0] != doc_id):
            self.registry.add_path(key, doc_id, stat.st_size, stat.st_mtime)
            self._drop_old_version(key, previous, doc_id)
            seen_in_batch.setdefault(sha, key)
            others = [p for p in existing.paths if p != key]
            if previous and previous[0] != doc_id:
                status = FileStatus.UPDATED  # changed into bytes the library already holds
            else:
                status = FileStatus.DUPLICATE if others else FileStatus.UNCHANGED  # a copy, or a rename
            row = self._row(key, status, existing)
            if others:
                row.error = f"same content as {Path(others[0]).name}"
            return row
        try:
            doc, chunks = self._index(path, sha, doc_id)
        except IngestError as exc:
            self.registry.record_failure(key, sha, str(exc))
            if previous:
                raise IngestError(f"{exc} (the previous version stays in the index)") from exc
            raise
        self.registry.add_path(key, doc_id, stat.st_size, stat.st_mtime)
        self._drop_old_version(key, previous, doc_id)
        seen_in_batch.setdefault(sha, key)
        status = FileStatus.UPDATED if (previous and previous[0] != doc_id) or existing else FileStatus.ADDED
        return self._row(key, status, doc, chunks=len(chunks))

    def _reencode_terms(self, doc_id: str) -> None:
        """New BM25 terms from the stored passage texts; a crash before the fingerprint update just redoes it."""
        points = list(self.store.scroll(SearchFilters(doc_ids=[doc_id])))
        for start in range(0, len(points), UPSERT_BATCH):
            batch = points[start : start + UPSERT_BATCH]
            self.store.set_sparse(
                {p.id: self.sparse.encode_document(p.payload["text"], p.payload.get("language") or "en") for p in batch}
            )
        self.registry.set_index_fingerprint(doc_id, self.fingerprint)
        log.info("re-encoded the BM25 terms of %d passages of %s (%s)", len(points), doc_id, TERMS_VERSION)

    def _drop_old_version(self, key: str, previous: tuple[str, int, float] | None, doc_id: str) -> None:
        if not previous or previous[0] == doc_id:
            return
        old = self.registry.get(previous[0])
        if old and not [p for p in old.paths if p != key]:
            self.store.delete_doc(old.doc_id)
            self.registry.delete_document(old.doc_id)

    @staticmethod
    def _row(path: str, status: FileStatus, doc: Document, chunks: int | None = None) -> FileReport:
        return FileReport(
            path=path, status=status, doc_id=doc.doc_id, pages=doc.pages, ocr_pages=doc.ocr_pages,
            needs_ocr_pages=doc.needs_ocr_pages, language=doc.meta.language,
            chunks=doc.chunks if chunks is None else chunks, title=doc.meta.title,
        )  # fmt: skip

    # --- indexing ------------------------------------------------------------------------------------------
    def _index(self, path: Path, sha: str, doc_id: str) -> tuple[Document, list[Chunk]]:
        s = self.settings
        name = path.name
        self.progress(name, "reading", 0, 1)
        pages, embedded = read_pages(path, s)
        needs_ocr = sum(p.needs_ocr for p in pages)
        if not any(p.text.strip() for p in pages):
            if needs_ocr and s.ocr_enabled and ocr_available():  # tesseract ran and failed or timed out
                raise IngestError(
                    f"no text layer on any of {len(pages)} pages and OCR failed or timed out on them: needs OCR "
                    f"(see the log; KB_OCR_TIMEOUT_S is {s.ocr_timeout_s} s)"
                )
            if needs_ocr:
                raise IngestError(
                    f"no text layer on any of {len(pages)} pages and OCR is unavailable: needs OCR "
                    "(install tesseract-ocr and its language packs)"
                )
            raise IngestError("no extractable text")
        chunks = chunk_document(
            pages, sha, doc_id, self.embedder.count_tokens, min(s.chunk_tokens, self.embedder.max_tokens),
            s.chunk_overlap_tokens, s.min_chunk_chars,
        )  # fmt: skip
        if not chunks:
            raise IngestError("no usable text after cleaning (only page furniture)")
        for c in chunks:
            c.language, c.language_confidence = detect(c.text)
        language, confidence = majority([(c.language, c.language_confidence, len(c.text)) for c in chunks])
        for c in chunks:
            if not c.language:
                c.language = language
        meta = build_metadata(path, sha, pages, embedded, language, self._catalogue, self._overrides)
        doc = Document(
            doc_id=doc_id,
            sha256=sha,
            paths=[str(path)],
            status=INDEXING,
            pages=len(pages),
            ocr_pages=sum(p.ocr for p in pages),
            needs_ocr_pages=needs_ocr,
            language_confidence=confidence,
            meta=meta,
        )
        self.store.ensure_collection(self.embedder.dim)
        self.registry.begin_document(doc, self.fingerprint)
        try:
            stale = self.store.point_ids(doc_id)
            means = self._embed_and_store(name, doc, chunks)
            self.store.delete_ids(sorted(stale - {c.chunk_id for c in chunks}))
            self.registry.save_part_means(doc_id, means)
        except BaseException:
            self.store.delete_doc(doc_id)  # never leave a half-written document behind
            self.registry.delete_document(doc_id)
            raise
        self.registry.finish_document(doc_id, len(chunks), tags_fingerprint(self.tagger, self.countries))
        doc.status, doc.chunks = INDEXED, len(chunks)
        return doc, chunks

    def _embed_and_store(self, name: str, doc: Document, chunks: list[Chunk]) -> list[PartMean]:
        """Embed, tag and store the chunks; returns the document's mean vectors per language (for centring)."""
        total = len(chunks)
        raw: list[StoredPoint] = []
        contexts = document_contexts([{"heading": c.heading, "language": c.language} for c in chunks], doc.meta.title)
        verdicts = self.registry.tag_reviews(doc.doc_id)
        for start in range(0, total, UPSERT_BATCH):
            batch = chunks[start : start + UPSERT_BATCH]
            spans = [spans_of(c.text) for c in batch]
            vectors, sentences = self.embedder.encode_passages_with_spans([c.text for c in batch], spans)
            if self.tagger is not None:
                texts, near = [c.text for c in batch], contexts[start : start + len(batch)]
                mine = [verdicts.get(c.chunk_id, {}) for c in batch]
                for c, tags in zip(batch, tag_passages(self.tagger, vectors, texts, near, mine), strict=True):
                    c.labels, c.label_triggers, c.label_reviews = tags.labels, tags.triggers, tags.reviews
            if self.countries is not None:
                for c in batch:
                    c.about = self.countries.countries(c.text)
            points = [self._point(doc, *item) for item in zip(batch, vectors, spans, sentences, strict=True)]
            raw += points
            if self.settings.centring:
                points = [centred_point(p, self.offsets) for p in points]
            self.store.upsert(points)
            self.progress(name, "embedding", min(start + UPSERT_BATCH, total), total)
        return document_means(doc.doc_id, raw)

    def _point(
        self, doc: Document, chunk: Chunk, vector: np.ndarray, spans: list[tuple[int, int]], sentences: np.ndarray
    ) -> StoredPoint:
        return StoredPoint(
            id=chunk.chunk_id,
            dense=vector.tolist(),
            sparse=self.sparse.encode_document(chunk.text, chunk.language),
            sentences=sentences.tolist(),
            payload=chunk_payload(doc, chunk) | {"sentence_spans": [list(sp) for sp in spans]},
        )


def tags_fingerprint(tagger: object | None, countries: object | None) -> str:
    """How a document's passages were tagged (framework labels, countries discussed): a change means re-tagging
    from the stored vectors and texts, never re-embedding."""
    return "|".join(fp for fp in (getattr(tagger, "fingerprint", ""), getattr(countries, "fingerprint", "")) if fp)


def vectors_part(fingerprint: str) -> str:
    """The vectors' recipe in a stored fingerprint (fingerprints from before ``TERMS_VERSION`` are all recipe)."""
    head, _, tail = fingerprint.rpartition("|")
    return head if tail.startswith("terms") else fingerprint


def chunk_payload(doc: Document, chunk: Chunk) -> dict:
    """Everything a filter or a citation needs, flat, so the store can filter and facet on it."""
    m = doc.meta
    return {
        "chunk_id": chunk.chunk_id, "doc_id": doc.doc_id, "position": chunk.position,
        "file": Path(doc.paths[0]).name if doc.paths else "", "title": m.title, "publisher": m.publisher,
        "year": m.year, "country": m.country, "doc_type": m.doc_type, "doc_language": m.language,
        "language": chunk.language, "language_confidence": chunk.language_confidence,
        "page_start": chunk.page_start, "page_end": chunk.page_end, "page_offsets": chunk.page_offsets,
        "heading": chunk.heading, "text": chunk.text,
        "labels": sorted(chunk.labels), "label_scores": chunk.labels, "about": chunk.about,
        "label_triggers": chunk.label_triggers, "label_reviews": {k: str(v) for k, v in chunk.label_reviews.items()},
    }  # fmt: skip
