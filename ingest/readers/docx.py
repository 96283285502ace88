"""Word documents: paragraphs (headings marked) and tables row by row; explicit page breaks start pages."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn

from ingest.errors import IngestError
from ingest.readers.base import Reader
from kb.records import Page


class DocxReader(Reader):
    def read(self, path: Path) -> list[Page]:
        try:
            document = docx.Document(str(path))
        except PackageNotFoundError as exc:  # python-docx's word for "not a zip archive"
            raise IngestError("corrupt .docx: not a readable Word package (damaged or truncated)") from exc
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise IngestError(f"corrupt .docx: {exc}") from exc
        props = document.core_properties
        for key in ("title", "author"):
            value = getattr(props, key, None)
            if value:
                self.embedded_metadata[key] = str(value)
        if props.created:
            self.embedded_metadata["year"] = str(props.created.year)

        pages: list[list[str]] = [[]]
        body = document.element.body
        for child in body.iterchildren():
            if child.tag == qn("w:p"):
                para = docx.text.paragraph.Paragraph(child, document)
                text = para.text.strip()
                style = (para.style.name or "").lower() if para.style is not None else ""
                if text:
                    if style.startswith("heading"):
                        level = "".join(c for c in style if c.isdigit()) or "1"
                        text = "#" * int(level) + " " + text
                    pages[-1].append(text)
                if any(br.get(qn("w:type")) == "page" for br in child.iter(qn("w:br"))):
                    pages.append([])
            elif child.tag == qn("w:tbl"):
                table = docx.table.Table(child, document)
                rows = [" | ".join(c.text.strip() for c in row.cells) for row in table.rows]
                pages[-1].append("\n".join(rows))
        return [Page(number=i + 1, text="\n\n".join(blocks)) for i, blocks in enumerate(pages)]
