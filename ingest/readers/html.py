"""HTML pages saved from the web: visible text only, block structure kept as paragraphs."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup

from ingest.readers.base import Reader
from ingest.readers.text import decode_text
from kb.records import Page

BLOCKS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "div", "section", "article", "table", "br"]


class HtmlReader(Reader):
    def read(self, path: Path) -> list[Page]:
        soup = BeautifulSoup(decode_text(path.read_bytes()), "html.parser")
        for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "svg"]):
            tag.decompose()
        if soup.title and soup.title.string:
            self.embedded_metadata["title"] = soup.title.string.strip()
        for level in range(1, 7):  # keep headings recognisable for the chunker
            for h in soup.find_all(f"h{level}"):
                h.insert_before("\n\n" + "#" * level + " ")
                h.insert_after("\n\n")
        for tag in soup.find_all(["p", "li", "tr", "table", "section", "article"]):
            tag.insert_after("\n\n")
        for cell in soup.find_all(["td", "th"]):
            cell.insert_after(" | ")
        text = soup.get_text()
        lines = [" ".join(line.split()) for line in text.splitlines()]
        cleaned = "\n".join(lines)
        while "\n\n\n" in cleaned:
            cleaned = cleaned.replace("\n\n\n", "\n\n")
        return [Page(number=1, text=cleaned.strip())]
