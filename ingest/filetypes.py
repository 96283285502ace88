"""Decide what a file really is from its bytes, not its name.

A report saved from a browser as ``.pdf`` is HTML; a ``.docx`` may be a broken zip. Sniffing first lets the
ingest report say precisely why a file was skipped.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import filetype

from ingest.errors import IngestError

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = {".pdf", ".docx", *TEXT_SUFFIXES, *HTML_SUFFIXES}


def _looks_like_html(head: bytes) -> bool:
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return probe.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in probe[:512]


def sniff(path: Path) -> str:
    """Return the content kind ('pdf', 'docx', 'html', 'text') or raise IngestError saying why not."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError("empty file (0 bytes)")
    with path.open("rb") as fh:
        head = fh.read(8192)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"unsupported file type '{suffix or 'no extension'}'")

    if head.startswith(b"%PDF") or b"%PDF-" in head[:1024]:
        kind = "pdf"
    elif _looks_like_html(head):
        kind = "html"
    else:
        guess = filetype.guess(head)
        if guess is None:
            kind = "text" if b"\x00" not in head else "binary"
        elif guess.extension == "docx" or (guess.extension == "zip" and suffix == ".docx"):
            kind = "docx"
        else:
            kind = f"{guess.extension} ({guess.mime})"

    expected = {".pdf": "pdf", ".docx": "docx"}.get(suffix)
    if suffix in HTML_SUFFIXES:
        expected = "html"
    elif suffix in TEXT_SUFFIXES:
        expected = "text"
    if kind == expected or (expected == "text" and kind == "html"):
        return expected
    if kind == "binary" or kind.startswith(("zip", "gz")):
        detail = "binary data" if kind == "binary" else kind
        raise IngestError(f"mislabelled or corrupt: named {suffix} but the content is {detail}")
    raise IngestError(f"mislabelled: named {suffix} but the content is {kind.split(' ')[0].upper()}")


def sha256_file(path: Path) -> str:
    """The file's content hash, read in blocks (a document's identity in the registry and the seed catalogue)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
