"""Pages without a text layer go through tesseract in the page's language, or are reported as needing OCR."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest

from ingest.language import detect
from ingest.ocr import ocr_available
from ingest.readers import read_pages
from kb.settings import Settings

SCANNED = "no_SNR_innspill-til-Helsereformutvalget_2025_SCANNED-image-only.pdf"


def _first_page_only(src: Path, dest: Path) -> Path:
    pdf = pdfium.PdfDocument(str(src))
    out = pdfium.PdfDocument.new()
    out.import_pages(pdf, [0])
    out.save(str(dest))
    return dest


@pytest.mark.skipif(not ocr_available(), reason="tesseract is not installed (.ci/run installs it)")
def test_scanned_norwegian_page_is_read_by_ocr(shared_corpus: Path, tmp_path: Path, base_settings: Settings) -> None:
    path = _first_page_only(shared_corpus / SCANNED, tmp_path / "scan.pdf")
    pages, _ = read_pages(path, base_settings)
    assert pages[0].ocr and not pages[0].needs_ocr
    assert len(pages[0].text) > 500
    assert detect(pages[0].text)[0] == "no"
    assert "helse" in pages[0].text.lower()


def test_without_ocr_the_page_is_reported_not_dropped(
    shared_corpus: Path, tmp_path: Path, base_settings: Settings
) -> None:
    path = _first_page_only(shared_corpus / SCANNED, tmp_path / "scan.pdf")
    pages, _ = read_pages(path, base_settings.model_copy(update={"ocr_enabled": False}))
    assert len(pages) == 1 and pages[0].needs_ocr and not pages[0].ocr
