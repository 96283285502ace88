"""Each reader turns real or generated files into correctly numbered pages."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest

from ingest.errors import IngestError
from ingest.filetypes import sniff
from ingest.readers import read_pages
from kb.settings import Settings


def test_pdf_reader_keeps_word_spacing_on_the_oecd_report(shared_corpus: Path, base_settings: Settings) -> None:
    pages, meta = read_pages(
        shared_corpus / "en_OECD_Health-data-governance-for-the-digital-age_2022.pdf", base_settings
    )
    text = " ".join(p.text for p in pages)
    assert len(pages) == 80
    assert [p.number for p in pages] == list(range(1, 81))
    assert "Netherlands" in text
    assert "N etherlands" not in text  # pypdf's defect on this file
    assert "Health Data Governance" in meta["title"]


def test_pdf_pages_are_the_pdf_page_index(shared_corpus: Path, base_settings: Settings) -> None:
    pages, _ = read_pages(shared_corpus / "en_EU_EHDS-Regulation-2025-327.pdf", base_settings)
    assert len(pages) == 96
    first_article_51 = next(p.number for p in pages if "Article 51" in p.text)
    assert 30 <= first_article_51 <= 70


def test_markdown_page_markers_become_pages(shared_corpus: Path, base_settings: Settings) -> None:
    path = shared_corpus / "en_WHO_Global-strategy-on-digital-health-2020-2025_docling-conversion.md"
    pages, _ = read_pages(path, base_settings)
    assert [p.number for p in pages] == list(range(1, 61))
    assert any("strategic objective" in p.text.lower() for p in pages)


def test_plain_text_without_markers_is_one_page(shared_corpus: Path, base_settings: Settings) -> None:
    pages, _ = read_pages(shared_corpus / "en_UK-DHSC_Data-saves-lives_2022.txt", base_settings)
    assert len(pages) == 1 and len(pages[0].text) > 200_000


def test_form_feeds_split_pages(tmp_path: Path, base_settings: Settings) -> None:
    path = tmp_path / "report.txt"
    path.write_text("First page text.\fSecond page text.\fThird page.", encoding="utf-8")
    pages, _ = read_pages(path, base_settings)
    assert [(p.number, p.text) for p in pages] == [
        (1, "First page text."),
        (2, "Second page text."),
        (3, "Third page."),
    ]


def test_non_utf8_text_is_decoded(tmp_path: Path, base_settings: Settings) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes("La stratégie numérique en santé prévoit l'interopérabilité des données.".encode("cp1252"))
    pages, _ = read_pages(path, base_settings)
    assert "stratégie numérique" in pages[0].text


def test_html_reader_keeps_visible_text_and_headings(tmp_path: Path, base_settings: Settings) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>E-health plan</title><script>var x=1;</script></head><body>"
        "<h2>Telemedicine</h2><p>Remote consultations reached <b>40%</b> of GP visits.</p>"
        "<table><tr><td>Year</td><td>2024</td></tr></table></body></html>",
        encoding="utf-8",
    )
    pages, meta = read_pages(path, base_settings)
    text = pages[0].text
    assert meta["title"] == "E-health plan"
    assert "## Telemedicine" in text and "40%" in text and "var x" not in text
    assert "Year | 2024" in text


def test_docx_reader_reads_headings_tables_and_page_breaks(tmp_path: Path, base_settings: Settings) -> None:
    document = docx.Document()
    document.core_properties.title = "Nasjonal e-helsestrategi"
    document.add_heading("Mål", level=1)
    document.add_paragraph("Innbyggerne skal ha tilgang til egne helseopplysninger.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "År", "2030"
    document.add_page_break()
    document.add_paragraph("Side to.")
    path = tmp_path / "strategi.docx"
    document.save(str(path))
    pages, meta = read_pages(path, base_settings)
    assert meta["title"] == "Nasjonal e-helsestrategi"
    assert len(pages) == 2
    assert "# Mål" in pages[0].text and "År | 2030" in pages[0].text
    assert pages[1].text == "Side to."


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.pdf", b"", "empty file"),
        (
            "saved.pdf",
            b"<!DOCTYPE html><html><body>Report</body></html>",
            "mislabelled: named .pdf but the content is HTML",
        ),
        (
            "image.pdf",
            bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\0" * 64,
            "mislabelled: named .pdf but the content is PNG",
        ),
        ("table.xlsx", b"PK\x03\x04data", "unsupported file type '.xlsx'"),
    ],
)
def test_sniffing_explains_what_a_file_really_is(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(IngestError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        sniff(path)
