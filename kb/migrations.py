"""Numbered schema migrations for the registry (applied in order, each once, recorded in _migrations)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    script = """
        CREATE TABLE documents (
            doc_id TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL,
            pages INTEGER NOT NULL DEFAULT 0,
            ocr_pages INTEGER NOT NULL DEFAULT 0,
            needs_ocr_pages INTEGER NOT NULL DEFAULT 0,
            chunks INTEGER NOT NULL DEFAULT 0,
            language TEXT NOT NULL DEFAULT '',
            language_confidence REAL NOT NULL DEFAULT 0,
            meta_json TEXT NOT NULL DEFAULT '{}',
            error TEXT NOT NULL DEFAULT '',
            added_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE paths (
            path TEXT PRIMARY KEY,
            doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            size INTEGER NOT NULL,
            mtime REAL NOT NULL
        );
        CREATE INDEX paths_doc ON paths(doc_id);
        CREATE TABLE failures (
            path TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            error TEXT NOT NULL,
            at TEXT NOT NULL
        )
    """
    for statement in script.split(";"):  # not executescript: it would commit our transaction half-way
        db.execute(statement)


@migration
def m002_index_fingerprint(db: sqlite3.Connection) -> None:
    # Which embedding model and chunking produced a document's vectors: a change means re-embedding.
    db.execute("ALTER TABLE documents ADD COLUMN index_fingerprint TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE documents ADD COLUMN labels_fingerprint TEXT NOT NULL DEFAULT ''")


@migration
def m003_saved_searches(db: sqlite3.Connection) -> None:
    # Searches and comparisons kept by name; last_seen_at decides which passages count as new.
    db.execute(
        """CREATE TABLE saved_searches (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'search',
            query TEXT NOT NULL,
            filters_json TEXT NOT NULL DEFAULT '{}',
            countries_json TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL
        )"""
    )


@migration
def m004_indexed_at(db: sqlite3.Connection) -> None:
    # When a document's last point was written: what "new since you last looked" compares (added_at is set
    # when indexing starts, so a long ingest would otherwise hide its document from a look taken meanwhile).
    db.execute("ALTER TABLE documents ADD COLUMN indexed_at TEXT NOT NULL DEFAULT ''")


@migration
def m005_language_centring(db: sqlite3.Connection) -> None:
    # Per (document, language) mean vectors, and every version of the per-language offsets computed from them:
    # a point stores the version it was centred with, so its vectors can always be restored and re-centred.
    for statement in (
        """CREATE TABLE part_means (
            doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
            language TEXT NOT NULL,
            space TEXT NOT NULL,
            count INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (doc_id, language, space)
        )""",
        """CREATE TABLE language_offsets (
            version INTEGER NOT NULL,
            space TEXT NOT NULL,
            language TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (version, space, language)
        )""",
    ):
        db.execute(statement)


@migration
def m006_tag_reviews(db: sqlite3.Connection) -> None:
    # Staff's verdicts on framework tags, by passage: re-tagging keeps a confirmed tag and never restores a rejected
    # one. Kept by passage id (derived from the document's bytes and position), so they also survive a document
    # being removed and added again.
    db.execute(
        """CREATE TABLE tag_reviews (
            chunk_id TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            label TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
            reviewed_at TEXT NOT NULL,
            PRIMARY KEY (chunk_id, label)
        )"""
    )
    db.execute("CREATE INDEX tag_reviews_doc ON tag_reviews (doc_id)")
