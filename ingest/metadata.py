"""Document metadata: guessed from the file, then the seed catalogue, then staff overrides.

Precedence, weakest first: guesses (file name ``<lang>_<publisher>_<title>_<year>``, embedded PDF metadata,
first pages) < ``corpus/sources.csv`` (the seed library's catalogue, matched by sha256) < ``metadata.csv``
(staff corrections, matched by file name or sha256). Language always comes from detection unless overridden.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import yaml

from index.sparse import fold
from kb.records import DocumentMeta, Page

RULES_FILE = Path(__file__).with_name("metadata_rules.yaml")
META_FIELDS = ("title", "publisher", "year", "country", "doc_type", "language", "url")
YEAR = re.compile(r"(?<!\d)(19[89]\d|20[0-4]\d)(?!\d)")
JUNK_TITLES = re.compile(r"^(microsoft (word|powerpoint)|untitled|document\d*$|title$|\W*$)", re.I)


@lru_cache(maxsize=1)
def rules() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def read_table(path: Path | None) -> list[dict[str, str]]:
    if path is None or not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(fh)]


def _year(value: str) -> int | None:
    m = YEAR.search(value or "")
    return int(m.group(1)) if m else None


def _title_from_pages(pages: list[Page]) -> str:
    for page in pages[:3]:
        for line in page.text.splitlines():
            line = line.strip().lstrip("#").strip()
            if 3 <= len(line.split()) <= 25 and sum(c.isalpha() for c in line) > 15 and not YEAR.fullmatch(line):
                return line
    return ""


def guess(path: Path, pages: list[Page], embedded: dict[str, str]) -> DocumentMeta:
    stem = re.sub(r"[_]+", " ", path.stem)
    head = "\n".join(p.text for p in pages[:3])[:15000]
    title = embedded.get("title", "").strip()
    if not title or JUNK_TITLES.match(title) or len(title) < 6:
        title = _title_from_pages(pages) or re.sub(r"[-]+", " ", stem).strip()
    years = [int(y) for y in YEAR.findall(stem)]
    year = years[-1] if years else _year(embedded.get("creationdate", "")) or _year(embedded.get("year", ""))
    if year is None:
        found = Counter(int(y) for y in YEAR.findall(head))
        year = max(found, key=lambda y: (found[y], y)) if found else None

    publisher, country = "", ""
    haystack = f"{stem}\n{embedded.get('author', '')}\n{title}\n{head}"
    for rule in rules()["publishers"]:
        if re.search(rule["pattern"], haystack):
            publisher, country = rule["publisher"], rule["country"]
            break
    if not country:
        counts = Counter()
        for code, names in rules()["countries"].items():
            counts[code] = sum(len(re.findall(rf"\b{re.escape(n)}\b", head)) for n in names)
        code, n = counts.most_common(1)[0]
        country = code if n else ""

    doc_type = ""
    for text in (f"{title} {stem}", head):
        text = fold(text)
        doc_type = next((r["type"] for r in rules()["doc_types"] if re.search(fold(r["pattern"]), text)), "")
        if doc_type:
            break
    return DocumentMeta(title=title[:300], publisher=publisher, year=year, country=country, doc_type=doc_type)


def apply_row(meta: DocumentMeta, row: dict[str, str], fields: tuple[str, ...] = META_FIELDS) -> DocumentMeta:
    """Fields present (non-empty) in a catalogue or override row replace the guessed ones."""
    updates: dict = {}
    for key in fields:
        value = row.get(key, "")
        if value:
            updates[key] = _year(value) if key == "year" else value
    return meta.model_copy(update=updates)


def find_row(rows: list[dict[str, str]], path: Path, sha256: str) -> dict[str, str] | None:
    for row in rows:
        if row.get("sha256") == sha256 or (row.get("file") and row["file"] == path.name):
            return row
    return None


def build_metadata(
    path: Path,
    sha256: str,
    pages: list[Page],
    embedded: dict[str, str],
    language: str,
    catalogue: list[dict[str, str]],
    overrides: list[dict[str, str]],
) -> DocumentMeta:
    meta = guess(path, pages, embedded).model_copy(update={"language": language})
    # by content; else by name (a seed document the publisher has since updated: same file, new bytes)
    seed = next((r for r in catalogue if r.get("sha256") == sha256), None) or next(
        (r for r in catalogue if r.get("file") == path.name), None
    )
    if seed:
        meta = apply_row(meta, seed, tuple(f for f in META_FIELDS if f != "language"))
    override = find_row(overrides, path, sha256)
    if override:
        meta = apply_row(meta, override)
    return meta
