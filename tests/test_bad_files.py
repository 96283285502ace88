"""One batch of broken, hostile and odd files next to good ones: every file is reported, the good ones are indexed.

The files are generated here (pypdf, python-docx, PIL, raw bytes) and ingested once with the real model and
embedded Qdrant; afterwards the registry and the index must agree point for point, and ``kb doctor`` is clean.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import docx
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject, StreamObject

from kb.records import FileReport, FileStatus
from kb.service import KnowledgeBase
from tests.integrity import assert_registry_matches_index

GOOD_MD = (
    "# Telemedicine reimbursement\n\nSince 2023 remote consultations are reimbursed like visits in person, "
    "provided the platform meets the national security baseline.\n"
)
UNICODE_MD = (
    "# Stratégie nationale e-santé\n\nLe dossier médical partagé devient la porte d'entrée unique des "
    "patients et des professionnels de santé d'ici 2030.\n"
)
# Both decode under several code pages; the detector alone picked mac_latin2 / cp1250 ('stratťgie', 'ĺ fřlge').
CP1252_TEXT = "La stratégie numérique en santé prévoit l’interopérabilité des données — « dossier médical partagé ». "
LATIN1_TEXT = "Helsedirektoratet har ansvar for å følge opp e-helsestrategien, og Norsk helsenett drifter løsningene. "
PDF_TEXT = "Electronic prescriptions are mandatory in every pharmacy since 2024 under the national eHealth act."
UNICODE_NAME = "Stratégie e‑santé 2030 – version finale ✓.md"
NON_UTF8_NAME = os.fsdecode(b"rapport caf\xe9 (export Windows).md")  # a byte that is not UTF-8
NON_UTF8_SHOWN = "rapport caf\\xe9 (export Windows).md"  # how the report names it (printable)


# --- generators ------------------------------------------------------------------------------------------------
def _write_pdf(writer: PdfWriter) -> bytes:
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def text_pdf(text: str) -> bytes:
    """A one-page PDF with a real text layer (Helvetica)."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    fonts = DictionaryObject({NameObject("/F1"): writer._add_object(font)})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 11 Tf 40 720 Td ({text}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(content)
    return _write_pdf(writer)


def blank_pdf(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    return _write_pdf(writer)


def encrypted_pdf(source: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")  # RC4-128: no extra dependency
    return _write_pdf(writer)


def break_catalog(pdf: bytes) -> bytes:
    """Damage the catalog object's header: PDFium refuses the file, pypdf's lenient parser still repairs it."""
    damaged, n = re.subn(rb"(\d+ 0) obj(\s*<<\s*/Type /Catalog)", rb"\1 ojb\2", pdf, count=1)
    assert n == 1
    return damaged


def huge_image_pdf(pixels: int) -> bytes:
    """One 200x200-inch page (the PDF maximum) that is a single pixels x pixels scan and has no text layer."""
    side = 14400
    writer = PdfWriter()
    page = writer.add_blank_page(side, side)
    image = StreamObject()
    packer = zlib.compressobj(9)
    row = b"\xff" * pixels
    image._data = b"".join(packer.compress(row) for _ in range(pixels)) + packer.flush()
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(pixels),
            NameObject("/Height"): NumberObject(pixels),
            NameObject("/ColorSpace"): NameObject("/DeviceGray"),
            NameObject("/BitsPerComponent"): NumberObject(8),
            NameObject("/Filter"): NameObject("/FlateDecode"),
        }
    )
    xobjects = DictionaryObject({NameObject("/Im1"): writer._add_object(image)})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/XObject"): xobjects})
    content = DecodedStreamObject()
    content.set_data(f"q {side} 0 0 {side} 0 0 cm /Im1 Do Q".encode())
    page[NameObject("/Contents")] = writer._add_object(content)
    return _write_pdf(writer)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def docx_bytes(text: str) -> bytes:
    document = docx.Document()
    document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


# Expected outcome per file: (status, phrases of which the reason must contain one, or None for no reason).
EXPECTED: dict[str, tuple[FileStatus, str | tuple[str, ...] | None]] = {
    "Good one.md": (FileStatus.ADDED, None),
    UNICODE_NAME: (FileStatus.ADDED, None),
    "sub/copy of Good one.md": (FileStatus.DUPLICATE, "same content as Good one.md"),
    "notes-cp1252.txt": (FileStatus.ADDED, None),
    "notes-latin1.txt": (FileStatus.ADDED, None),
    "prescriptions.pdf": (FileStatus.ADDED, None),
    "encrypted-empty-password.pdf": (FileStatus.ADDED, None),
    "repairable-catalog.pdf": (FileStatus.ADDED, None),
    "encrypted-with-password.pdf": (FileStatus.FAILED, "encrypted PDF: a password is needed"),
    "truncated.pdf": (FileStatus.FAILED, "corrupt PDF"),
    "garbage.pdf": (FileStatus.FAILED, "corrupt PDF"),
    "zero-bytes.pdf": (FileStatus.FAILED, "empty file (0 bytes)"),
    "zero-bytes.txt": (FileStatus.FAILED, "empty file (0 bytes)"),
    "saved-web-page.pdf": (FileStatus.FAILED, "named .pdf but the content is HTML"),
    "photo.pdf": (FileStatus.FAILED, "named .pdf but the content is PNG"),
    "blank-3000-pages.pdf": (FileStatus.FAILED, "no extractable text"),
    "3001-pages.pdf": (FileStatus.FAILED, "too many pages: 3001 (limit 3000"),
    "damaged-3001-pages.pdf": (FileStatus.FAILED, "too many pages: 3001 (limit 3000"),
    "huge-scan.pdf": (FileStatus.FAILED, ("no extractable text", "needs OCR")),  # a blank scan, OCR or not
    "corrupt.docx": (FileStatus.FAILED, "corrupt .docx"),
    "truncated.docx": (FileStatus.FAILED, "corrupt .docx"),
    NON_UTF8_SHOWN: (FileStatus.FAILED, "not valid UTF-8"),
}


def make_batch(corpus: Path) -> None:
    (corpus / "sub").mkdir(parents=True)
    files: dict[str, bytes] = {
        "Good one.md": GOOD_MD.encode(),
        UNICODE_NAME: UNICODE_MD.encode(),
        "sub/copy of Good one.md": GOOD_MD.encode(),
        "notes-cp1252.txt": (CP1252_TEXT * 4).encode("cp1252"),
        "notes-latin1.txt": (LATIN1_TEXT * 3).encode("latin-1"),
        "zero-bytes.pdf": b"",
        "zero-bytes.txt": b"",
        "saved-web-page.pdf": b"<!DOCTYPE html>\n<html><head><title>Report</title></head><body><p>x</p></body></html>",
        "photo.pdf": png_bytes(),
        "garbage.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 8,
        "blank-3000-pages.pdf": blank_pdf(3000),
        "3001-pages.pdf": blank_pdf(3001),
        "damaged-3001-pages.pdf": break_catalog(blank_pdf(3001)),
        "huge-scan.pdf": huge_image_pdf(8000),
        "corrupt.docx": b"PK\x03\x04" + b"\x00" * 300,
        NON_UTF8_SHOWN: GOOD_MD.replace("2023", "2022").encode(),
    }
    pdf = text_pdf(PDF_TEXT)
    files["prescriptions.pdf"] = pdf
    files["truncated.pdf"] = pdf[: len(pdf) // 2]
    files["encrypted-empty-password.pdf"] = encrypted_pdf(text_pdf(PDF_TEXT.replace("2024", "2025")), "")
    files["encrypted-with-password.pdf"] = encrypted_pdf(pdf, "s3cret")
    files["repairable-catalog.pdf"] = break_catalog(text_pdf(PDF_TEXT.replace("2024", "2021")))
    word = docx_bytes("Interoperability roadmap for regional health records.")
    files["truncated.docx"] = word[: len(word) // 2]
    assert set(files) == set(EXPECTED)
    for name, data in files.items():
        (corpus / (NON_UTF8_NAME if name == NON_UTF8_SHOWN else name)).write_bytes(data)


def is_readable(reason: str) -> bool:
    """A reason staff can act on: a sentence, not a bare exception class or a traceback."""
    return bool(reason) and not re.match(r"^[A-Za-z_.]*(Error|Exception)\b", reason) and "Traceback" not in reason


def rows_by_name(rows: list[FileReport], corpus: Path) -> dict[str, FileReport]:
    out: dict[str, FileReport] = {}
    for row in rows:
        name = Path(row.path).relative_to(corpus).as_posix()
        assert name not in out, f"{name} reported twice"
        out[name] = row
    return out


def test_a_batch_of_bad_files_is_reported_and_the_good_ones_are_indexed(
    make_kb: Callable[..., KnowledgeBase], tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    make_batch(corpus)
    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")  # framework tagging is not what this tests
    # The folder through a '..' path, and one of its files named again explicitly: each file once, paths clean.
    detour = corpus / "sub" / ".."
    report = kb.ingest([detour, detour / "Good one.md"])

    rows = rows_by_name(report.files, corpus)
    assert set(rows) == set(EXPECTED)
    for name, (status, phrase) in EXPECTED.items():
        row = rows[name]
        assert row.status is status, f"{name}: {row.status.value} ({row.error})"
        assert ".." not in Path(row.path).parts
        if phrase is None:
            assert row.chunks > 0 and not row.error, f"{name}: {row.error}"
        else:
            phrases = [phrase] if isinstance(phrase, str) else phrase
            assert any(p in row.error for p in phrases), f"{name}: {row.error!r}"
            assert is_readable(row.error), f"{name}: {row.error!r}"
    assert report.totals()["failed"] == sum(s is FileStatus.FAILED for s, _ in EXPECTED.values())

    # Failed files have no document and no points; the good ones are exactly what the index holds.
    for name, (status, _) in EXPECTED.items():
        if status is FileStatus.FAILED:
            assert kb.registry.by_file((corpus / name).name) is None, name
    assert_registry_matches_index(kb)
    good = kb.registry.by_file("Good one.md")
    assert good is not None and sorted(Path(p).relative_to(corpus).as_posix() for p in good.paths) == [
        "Good one.md",
        "sub/copy of Good one.md",
    ]
    assert all(".." not in Path(p).parts for d in kb.documents() for p in d.paths)

    # Legacy encodings are decoded, not garbled.
    texts = {p.payload["file"]: p.payload["text"] for p in kb.store.scroll(None)}
    assert "l’interopérabilité des données — « dossier médical partagé »" in texts["notes-cp1252.txt"]
    assert "har ansvar for å følge opp e-helsestrategien" in texts["notes-latin1.txt"]
    assert "national eHealth act" in texts["encrypted-empty-password.pdf"]
    assert "since 2021" in texts["repairable-catalog.pdf"]
    assert "porte d'entrée unique" in texts[UNICODE_NAME]

    # The same folder again, plainly: nothing re-embedded, nothing removed, failures remembered.
    again = rows_by_name(kb.ingest([corpus]).files, corpus)
    assert set(again) == set(EXPECTED)
    for name, (status, _) in EXPECTED.items():
        expected_again = FileStatus.FAILED if status is FileStatus.FAILED else FileStatus.UNCHANGED
        assert again[name].status is expected_again, f"{name}: {again[name].status.value} {again[name].error}"
    assert_registry_matches_index(kb)  # includes a clean kb doctor


def test_copies_of_a_failed_file_all_fail_with_the_same_reason(
    make_kb: Callable[..., KnowledgeBase], tmp_path: Path
) -> None:
    """Identical broken bytes under two names: two failures, no document, no points."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pdf = text_pdf(PDF_TEXT)
    (corpus / "a.pdf").write_bytes(encrypted_pdf(pdf, "pw"))
    shutil.copy(corpus / "a.pdf", corpus / "copy of a.pdf")
    kb = make_kb(frameworks_file=tmp_path / "no-frameworks.yaml")
    report = kb.ingest()
    assert [r.status for r in report.files] == [FileStatus.FAILED, FileStatus.FAILED]
    assert all("encrypted PDF" in r.error for r in report.files)
    assert kb.documents() == [] and kb.store.count() == 0
