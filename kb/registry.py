"""The document registry: SQLite, the truth for what the index holds and how each file fared.

One row per distinct content (sha256); every path that carries those bytes is recorded, so the same report
under two names is one document. Status goes pending → indexing → indexed (or failed); a document left in
``indexing`` by a crash is cleaned up by the next ingest or ``kb doctor``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.centring import Offsets, PartMean
from kb.migrations import MIGRATIONS
from kb.records import Document, DocumentMeta, SavedSearch, SearchFilters, TagVerdict

INDEXING, INDEXED, FAILED = "indexing", "indexed", "failed"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")  # orders a save and an ingest in the same second


class Registry:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.migrate()

    def migrate(self) -> list[str]:
        self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        done = {r[0] for r in self.db.execute("SELECT name FROM _migrations")}
        applied = []
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            with self.transaction():
                fn(self.db)
                self.db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now()))
            applied.append(name)
        return applied

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # --- reading -------------------------------------------------------------------------------------------
    def _document(self, row: sqlite3.Row) -> Document:
        paths = [r[0] for r in self.db.execute("SELECT path FROM paths WHERE doc_id=? ORDER BY path", (row["doc_id"],))]
        meta = DocumentMeta(**json.loads(row["meta_json"]))
        return Document(
            doc_id=row["doc_id"], sha256=row["sha256"], paths=paths, status=row["status"], pages=row["pages"],
            ocr_pages=row["ocr_pages"], needs_ocr_pages=row["needs_ocr_pages"], chunks=row["chunks"],
            language_confidence=row["language_confidence"], meta=meta, error=row["error"],
            added_at=row["added_at"], updated_at=row["updated_at"], indexed_at=row["indexed_at"],
        )  # fmt: skip

    def documents(self, status: str | None = None) -> list[Document]:
        sql, args = "SELECT * FROM documents", ()
        if status:
            sql, args = sql + " WHERE status=?", (status,)
        return [self._document(r) for r in self.db.execute(sql + " ORDER BY added_at, doc_id", args)]

    def get(self, doc_id: str) -> Document | None:
        row = self.db.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return self._document(row) if row else None

    def by_sha(self, sha256: str) -> Document | None:
        row = self.db.execute("SELECT * FROM documents WHERE sha256=?", (sha256,)).fetchone()
        return self._document(row) if row else None

    def by_file(self, name: str) -> Document | None:
        """A document by path or base name (what users type)."""
        for row in self.db.execute("SELECT doc_id, path FROM paths"):
            if row["path"] == name or Path(row["path"]).name == name:
                return self.get(row["doc_id"])
        return None

    def path_map(self) -> dict[str, tuple[str, int, float]]:
        """path → (doc_id, size, mtime) for every registered path."""
        return {r[0]: (r[1], r[2], r[3]) for r in self.db.execute("SELECT path, doc_id, size, mtime FROM paths")}

    def fingerprints(self, doc_id: str) -> tuple[str, str]:
        row = self.db.execute(
            "SELECT index_fingerprint, labels_fingerprint FROM documents WHERE doc_id=?", (doc_id,)
        ).fetchone()
        return (row[0], row[1]) if row else ("", "")

    def failures(self) -> dict[str, tuple[str, str]]:
        return {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT path, sha256, error FROM failures")}

    # --- writing -------------------------------------------------------------------------------------------
    def begin_document(self, doc: Document, fingerprint: str) -> None:
        """Record a document as being indexed, before any of its points are written."""
        ts = now()
        with self.transaction() as db:
            db.execute(
                """INSERT INTO documents (doc_id, sha256, status, pages, ocr_pages, needs_ocr_pages, chunks, language,
                       language_confidence, meta_json, error, added_at, updated_at, index_fingerprint)
                   VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, '', ?, ?, ?)
                   ON CONFLICT(doc_id) DO UPDATE SET status=excluded.status, pages=excluded.pages,
                       ocr_pages=excluded.ocr_pages, needs_ocr_pages=excluded.needs_ocr_pages,
                       language=excluded.language, language_confidence=excluded.language_confidence,
                       meta_json=excluded.meta_json, error='', updated_at=excluded.updated_at,
                       index_fingerprint=excluded.index_fingerprint""",
                (doc.doc_id, doc.sha256, INDEXING, doc.pages, doc.ocr_pages, doc.needs_ocr_pages, doc.meta.language,
                 doc.language_confidence, doc.meta.model_dump_json(), ts, ts, fingerprint),
            )  # fmt: skip

    def finish_document(self, doc_id: str, chunks: int, labels_fingerprint: str) -> None:
        self.db.execute(
            "UPDATE documents SET status=?, chunks=?, labels_fingerprint=?, updated_at=?, indexed_at=? WHERE doc_id=?",
            (INDEXED, chunks, labels_fingerprint, ts := now(), ts, doc_id),
        )

    def set_index_fingerprint(self, doc_id: str, fingerprint: str) -> None:
        self.db.execute("UPDATE documents SET index_fingerprint=? WHERE doc_id=?", (fingerprint, doc_id))

    def set_labels_fingerprint(self, doc_id: str, fingerprint: str) -> None:
        self.db.execute("UPDATE documents SET labels_fingerprint=? WHERE doc_id=?", (fingerprint, doc_id))

    def set_status(self, doc_id: str, status: str, error: str = "") -> None:
        self.db.execute(
            "UPDATE documents SET status=?, error=?, updated_at=? WHERE doc_id=?", (status, error, now(), doc_id)
        )

    def update_meta(self, doc_id: str, meta: DocumentMeta) -> None:
        self.db.execute(
            "UPDATE documents SET meta_json=?, language=?, updated_at=? WHERE doc_id=?",
            (meta.model_dump_json(), meta.language, now(), doc_id),
        )

    def add_path(self, path: str, doc_id: str, size: int, mtime: float) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO paths VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET doc_id=excluded.doc_id, "
                "size=excluded.size, mtime=excluded.mtime",
                (path, doc_id, size, mtime),
            )
            db.execute("DELETE FROM failures WHERE path=?", (path,))

    def remove_path(self, path: str) -> None:
        self.db.execute("DELETE FROM paths WHERE path=?", (path,))

    def orphans(self) -> list[str]:
        """Documents no path points to any more."""
        sql = "SELECT doc_id FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM paths)"
        return [r[0] for r in self.db.execute(sql)]

    def delete_document(self, doc_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM paths WHERE doc_id=?", (doc_id,))
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    def record_failure(self, path: str, sha256: str, error: str) -> None:
        self.db.execute(
            "INSERT INTO failures VALUES (?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET sha256=excluded.sha256, "
            "error=excluded.error, at=excluded.at",
            (path, sha256, error, now()),
        )

    def clear_failure(self, path: str) -> None:
        self.db.execute("DELETE FROM failures WHERE path=?", (path,))

    # --- language centring ---------------------------------------------------------------------------------
    def save_part_means(self, doc_id: str, parts: list[PartMean]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM part_means WHERE doc_id=?", (doc_id,))
            db.executemany(
                "INSERT INTO part_means VALUES (?, ?, ?, ?, ?)",
                [(doc_id, p.language, p.space, p.count, _blob(p.vector)) for p in parts],
            )

    def part_means(self) -> list[PartMean]:
        sql = "SELECT p.* FROM part_means p JOIN documents d USING (doc_id) WHERE d.status=?"
        return [
            PartMean(r["doc_id"], r["language"], r["space"], r["count"], _vector(r["vector"]))
            for r in self.db.execute(sql, (INDEXED,))
        ]

    def documents_without_means(self) -> list[str]:
        sql = "SELECT doc_id FROM documents WHERE status=? AND doc_id NOT IN (SELECT doc_id FROM part_means)"
        return [r[0] for r in self.db.execute(sql, (INDEXED,))]

    def offsets(self, version: int | None = None) -> Offsets:
        """One version of the language offsets (the newest by default; version 0 is no centring)."""
        if version is None:
            version = self.db.execute("SELECT COALESCE(MAX(version), 0) FROM language_offsets").fetchone()[0]
        rows = self.db.execute("SELECT * FROM language_offsets WHERE version=?", (version,))
        return Offsets(version, {(r["space"], r["language"]): _vector(r["vector"]) for r in rows})

    def save_offsets(self, vectors: dict[tuple[str, str], np.ndarray]) -> Offsets:
        with self.transaction() as db:
            version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM language_offsets").fetchone()[0]
            db.executemany(
                "INSERT INTO language_offsets VALUES (?, ?, ?, ?)",
                [(version, space, lang, _blob(v)) for (space, lang), v in vectors.items()],
            )
        return Offsets(version, dict(vectors))

    # --- staff's verdicts on tags --------------------------------------------------------------------------
    def review_tag(self, doc_id: str, chunk_id: str, label: str, verdict: TagVerdict | None) -> None:
        """Confirm or reject one tag of one passage (``None`` withdraws the verdict)."""
        if verdict is None:
            self.db.execute("DELETE FROM tag_reviews WHERE chunk_id=? AND label=?", (chunk_id, label))
            return
        self.db.execute(
            "INSERT INTO tag_reviews VALUES (?, ?, ?, ?, ?) ON CONFLICT(chunk_id, label) DO UPDATE SET "
            "verdict=excluded.verdict, reviewed_at=excluded.reviewed_at",
            (chunk_id, doc_id, label, TagVerdict(verdict).value, now()),
        )

    def tag_reviews(self, doc_id: str) -> dict[str, dict[str, TagVerdict]]:
        """The verdicts on one document's passages: passage id -> label -> verdict."""
        out: dict[str, dict[str, TagVerdict]] = {}
        for r in self.db.execute("SELECT chunk_id, label, verdict FROM tag_reviews WHERE doc_id=?", (doc_id,)):
            out.setdefault(r["chunk_id"], {})[r["label"]] = TagVerdict(r["verdict"])
        return out

    # --- saved searches ------------------------------------------------------------------------------------
    def save_search(self, saved: SavedSearch) -> SavedSearch:
        """Keep a search by name (a name already taken is replaced: saving again is editing)."""
        ts = now()
        self.db.execute(
            """INSERT INTO saved_searches (name, kind, query, filters_json, countries_json, created_at, last_seen_at)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, query=excluded.query,
               filters_json=excluded.filters_json, countries_json=excluded.countries_json,
               last_seen_at=excluded.last_seen_at""",
            (saved.name, saved.kind, saved.query, saved.filters.model_dump_json(), json.dumps(saved.countries), ts, ts),
        )
        return self.saved_search(saved.name)  # type: ignore[return-value]

    def saved_searches(self) -> list[SavedSearch]:
        return [self._saved(r) for r in self.db.execute("SELECT * FROM saved_searches ORDER BY created_at, name")]

    def saved_search(self, name: str) -> SavedSearch | None:
        row = self.db.execute("SELECT * FROM saved_searches WHERE name=?", (name,)).fetchone()
        return self._saved(row) if row else None

    def mark_seen(self, name: str) -> None:
        self.db.execute("UPDATE saved_searches SET last_seen_at=? WHERE name=?", (now(), name))

    def delete_saved_search(self, name: str) -> bool:
        return self.db.execute("DELETE FROM saved_searches WHERE name=?", (name,)).rowcount > 0

    @staticmethod
    def _saved(row: sqlite3.Row) -> SavedSearch:
        return SavedSearch(
            name=row["name"], kind=row["kind"], query=row["query"],
            filters=SearchFilters.model_validate_json(row["filters_json"]),
            countries=json.loads(row["countries_json"]), created_at=row["created_at"], last_seen_at=row["last_seen_at"],
        )  # fmt: skip


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).copy()
