"""What a passage's document says about it: the tagger reads a passage in the light of its document's title and the
heading of its section.

A passage on "common formats" reads as interoperability in a section headed "Standards" of a national strategy and
as something else under "Digital skills"; the passage alone often cannot tell. Everything here is in the payload
already, so re-tagging needs no re-embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel


class PassageContext(BaseModel):
    """A passage's document context; empty fields when it is unknown (a free text given to ``kb tag``)."""

    title: str = ""
    heading: str = ""  # the last heading before the passage (ingest.chunker)
    language: str = ""  # the passage's language: the tagger centres its vector on that language's mean

    @property
    def section(self) -> str:
        """Title and section heading as one line (the block of features that reads them)."""
        return " | ".join(t for t in (self.title, self.heading) if t)


def document_contexts(passages: Sequence[dict], title: str = "") -> list[PassageContext]:
    """Contexts for one document's passages, each a payload-like dict (``heading``, ``language``, and ``title``
    where the argument leaves it out)."""
    return [
        PassageContext(
            title=title or p.get("title") or "", heading=p.get("heading") or "", language=p.get("language") or ""
        )
        for p in passages
    ]
