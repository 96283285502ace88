"""Open a cited page: the PDF page itself with the passage highlighted, or the passage text for other formats.

The page is cut out of the library file (one small PDF instead of the whole report crossing the wire) and the
passage's sentences are located in the page's own text layer (pdfium), so the highlight boxes sit on the words
the citation quotes. When a sentence can't be located (OCR'd page, hyphenation) the page is shown without it
and the passage text is shown beside it.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

HIGHLIGHT = "rgba(255, 196, 0, 0.95)"
_SPLIT = re.compile(r"\s+…\s+|(?<=[.!?;])\s+")


@dataclass
class ViewRequest:
    """What to open: a document page and the text pieces to highlight on it."""

    doc_id: str
    file: str
    title: str
    page: int
    pieces: list[str] = field(default_factory=list)
    passage: str = ""  # the whole passage, shown beside the page
    label: str = ""  # "[3]" for a citation, "hit 2" for a search result


def bold_pieces(snippet: str) -> list[str]:
    """The **marked** sentences of a search snippet."""
    return [p.strip() for p in re.findall(r"\*\*(.+?)\*\*", snippet, flags=re.S) if p.strip()]


def quote_pieces(quote: str) -> list[str]:
    """A citation quote split into its sentences (quotes from one page are joined with spaces or ' … ')."""
    return [p.strip(' “”"') for p in _SPLIT.split(quote) if len(p.strip()) >= 12]


def _norm(text: str) -> tuple[str, list[int]]:
    """Letters and digits only, case- and accent-folded, with the index of each kept character in ``text``."""
    out, where = [], []
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKD", ch.casefold()):
            if c.isalnum():
                out.append(c)
                where.append(i)
    return "".join(out), where


def locate(page_text: str, piece: str, edge: int = 40) -> tuple[int, int] | None:
    """Character span of ``piece`` in ``page_text``, ignoring spacing, punctuation, case and accents.

    Falls back to matching the piece's first and last ``edge`` characters when the middle differs (a line break
    hyphen, a footnote mark)."""
    hay, where = _norm(page_text)
    needle, _ = _norm(piece)
    if len(needle) < 8 or not hay:
        return None
    pos = hay.find(needle)
    if pos >= 0:
        return where[pos], where[pos + len(needle) - 1] + 1
    head, tail = needle[:edge], needle[-edge:]
    a = hay.find(head)
    if a < 0:
        return None
    b = hay.find(tail, a)
    if b < 0 or b - a > 3 * len(needle):
        return None
    return where[a], where[b + len(tail) - 1] + 1


def _page_chars(textpage) -> str:
    """The page text with one character per pdfium char index (so spans map straight to char boxes)."""
    import pypdfium2.raw as pdfium_c

    n = textpage.count_chars()
    return "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i) or 32) for i in range(n))


def merge_lines(rects: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
    """One box per text line: pdfium gives a rectangle per text run (left, bottom, right, top)."""
    merged: list[list[float]] = []
    for x0, y0, x1, y1 in rects:
        last = merged[-1] if merged else None
        if last is not None:
            overlap = min(last[3], y1) - max(last[1], y0)
            if overlap > 0.5 * min(last[3] - last[1], y1 - y0) and x0 <= last[2] + 12:
                last[:] = [min(last[0], x0), min(last[1], y0), max(last[2], x1), max(last[3], y1)]
                continue
        merged.append([x0, y0, x1, y1])
    return [tuple(m) for m in merged]  # type: ignore[misc]


def highlight_boxes(path: Path, page: int, pieces: list[str]) -> list[dict]:
    """streamlit-pdf-viewer annotations (PDF points, origin top-left of the page's crop box) over the pieces."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            return []
        pg = pdf[page - 1]
        left, _, _, top = pg.get_cropbox()
        tp = pg.get_textpage()
        text = _page_chars(tp)
        boxes: list[dict] = []
        for piece in pieces:
            span = locate(text, piece)
            if span is None:
                continue
            start, end = span
            rects = [tp.get_rect(i) for i in range(tp.count_rects(start, end - start))]
            for x0, y0, x1, y1 in merge_lines([r for r in rects if r[2] - r[0] >= 1 and r[3] - r[1] >= 1]):
                boxes.append(
                    {
                        "page": 1,
                        "x": round(x0 - left - 2, 2),
                        "y": round(top - y1 - 2, 2),
                        "width": round(x1 - x0 + 4, 2),
                        "height": round(y1 - y0 + 4, 2),
                        "color": HIGHLIGHT,
                        "border": "solid",
                    }
                )
        return boxes
    finally:
        pdf.close()


def single_page(path: Path, page: int) -> bytes:
    """One page of a PDF as a PDF of its own (what the browser is sent)."""
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(str(path))
    try:
        out = pdfium.PdfDocument.new()
        out.import_pages(src, [page - 1])
        buf = io.BytesIO()
        out.save(buf)
        out.close()
        return buf.getvalue()
    finally:
        src.close()


def page_count(path: Path) -> int:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return len(pdf)
    finally:
        pdf.close()


def is_pdf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return b"%PDF-" in fh.read(1024)
    except OSError:
        return False
