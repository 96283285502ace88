"""Plain text and Markdown, keeping page markers when a conversion left them.

Form feeds (``\\f``, as pdftotext writes) and ``<!-- PAGE n -->`` comments (as docling writes) both mark pages.
"""

from __future__ import annotations

import re
from pathlib import Path

from charset_normalizer import from_bytes

from ingest.errors import IngestError
from ingest.readers.base import Reader
from kb.records import Page

NEAR_CHAOS = 0.05  # readings this close to the detector's best are equally plausible
LEGACY_CODEPAGES = ("mac_", "cp4", "cp7", "cp8")  # Mac and DOS code pages: seldom where a file comes from today
PAGE_COMMENT = re.compile(r"<!--\s*PAGE\s+(\d+)\s*-->", re.IGNORECASE)


def decode_text(raw: bytes) -> str:
    """UTF-8 first; otherwise the charset the bytes most plausibly are (cp1252, latin-1, ...)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    matches = from_bytes(raw)
    best = matches.best()
    if best is None:
        raise IngestError("undecodable text: no character encoding fits") from None
    # Short texts fit several code pages about equally well, and the detector may pick a legacy Mac one
    # (mac_latin2 turns 'é' into 'ť'). Among the near-best readings prefer Windows cp1252, the likeliest source
    # of a non-UTF-8 file in this library, then any reading from a code page that is not Mac or DOS.
    near = [m for m in matches if m.chaos <= best.chaos + NEAR_CHAOS]
    for match in near:
        if "cp1252" in match.could_be_from_charset:  # decodes to exactly what cp1252 gives
            return str(match)
    return str(next((m for m in near if not m.encoding.startswith(LEGACY_CODEPAGES)), best))


def split_pages(text: str) -> list[Page]:
    markers = list(PAGE_COMMENT.finditer(text))
    if markers:
        pages: list[Page] = []
        preamble = text[: markers[0].start()].strip()
        for i, m in enumerate(markers):
            end = markers[i + 1].start() if i + 1 < len(markers) else len(text)
            body = text[m.end() : end].strip()
            if i == 0 and preamble:
                body = f"{preamble}\n\n{body}"
            pages.append(Page(number=int(m.group(1)), text=body))
        return pages
    if "\f" in text:
        return [Page(number=i + 1, text=part.strip()) for i, part in enumerate(text.split("\f"))]
    return [Page(number=1, text=text.strip())]


class TextReader(Reader):
    def read(self, path: Path) -> list[Page]:
        return split_pages(decode_text(path.read_bytes()))
