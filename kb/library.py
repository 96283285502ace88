"""Staff corrections to document metadata, kept in ``metadata.csv`` so every later ingest applies them again.

The file's format and precedence are those of ``ingest/metadata.py``: one row per file, matched by ``sha256`` or
``file`` (base name); a non-empty column overrides what was guessed. Rows and columns this module does not
touch are kept as they are; the file is replaced atomically.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from ingest.metadata import META_FIELDS, read_table
from kb.records import Document

COLUMNS = ("file", "sha256", *META_FIELDS)


def _cell(value: object) -> str:
    return "" if value is None else str(value).strip()


def write_override(path: Path, doc: Document, changed: dict[str, object]) -> dict[str, str]:
    """Record ``changed`` metadata fields for ``doc`` in the override table; returns the row as written."""
    rows = read_table(path)
    names = {Path(p).name for p in doc.paths}
    row = next((r for r in rows if r.get("sha256") == doc.sha256), None)
    if row is None:
        row = next((r for r in rows if r.get("file") and r["file"] in names), None)
    if row is None:
        row = {}
        rows.append(row)
    row["file"] = doc.file or row.get("file", "")
    row["sha256"] = doc.sha256
    for key, value in changed.items():
        if key in META_FIELDS:
            row[key] = _cell(value)
    columns = list(COLUMNS) + sorted({k for r in rows for k in r} - set(COLUMNS))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".metadata-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for r in rows:
                writer.writerow({c: r.get(c, "") for c in columns})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {c: row.get(c, "") for c in columns}
