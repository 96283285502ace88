"""One reader per content kind; ``read_pages`` picks by sniffed content."""

from __future__ import annotations

from pathlib import Path

from ingest.filetypes import sniff
from ingest.readers.base import Reader
from ingest.readers.docx import DocxReader
from ingest.readers.html import HtmlReader
from ingest.readers.pdf import PdfReader
from ingest.readers.text import TextReader
from kb.records import Page
from kb.settings import Settings

READERS: dict[str, type[Reader]] = {
    "pdf": PdfReader,
    "docx": DocxReader,
    "html": HtmlReader,
    "text": TextReader,
}


def read_pages(path: Path, settings: Settings) -> tuple[list[Page], dict[str, str]]:
    """Pages of a file plus any embedded metadata (title, author, dates); raises IngestError."""
    reader = READERS[sniff(path)](settings)
    return reader.read(path), reader.embedded_metadata
