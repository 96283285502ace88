"""Structure-aware chunking sized to the embedding model's real window, with exact page spans.

Pages are joined into one text with their start offsets kept; the text is cut into units (headings,
Markdown table blocks, sentences; over-long units by lines, then words), and units are packed greedily up to the
token budget, counted with the embedding model's own tokenizer. A chunk is always a contiguous slice of the
joined text, so every character maps back to its page. A heading closes a chunk that is already half full, so
sections start fresh; the last sentences of a chunk are repeated at the start of the next (overlap).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from index.text import punkt
from kb.records import Chunk, Page

CHUNK_NAMESPACE = uuid.UUID("6f1d3a52-4b1e-4c59-9a57-2f0d6c4e8b11")
PAGE_JOINER = "\n\n"
BLOCK = re.compile(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\Z)", re.DOTALL)
MD_HEADING = re.compile(r"^#{1,6}\s+\S")
NUMBERED_HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.|Article\s+\d+|Artikel\s+\d+|Art\.\s*\d+)\s+\S", re.I)
TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")

TokenCounter = Callable[[list[str]], list[int]]


@dataclass
class Unit:
    start: int
    end: int
    kind: str  # heading, table, text
    tokens: int = 0


def chunk_id(sha256: str, position: int) -> str:
    """Stable across runs: same bytes and position give the same point id (idempotent upserts)."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{sha256}:{position}"))


def join_pages(pages: list[Page]) -> tuple[str, list[tuple[int, int]]]:
    """The document text and (offset, page number) where each page starts."""
    parts, starts, offset = [], [], 0
    for page in pages:
        if not page.text.strip():
            continue
        starts.append((offset, page.number))
        parts.append(page.text)
        offset += len(page.text) + len(PAGE_JOINER)
    return PAGE_JOINER.join(parts), starts


def _is_heading(line: str) -> bool:
    line = line.strip()
    if MD_HEADING.match(line):
        return True
    words = line.split()
    if not 1 <= len(words) <= 12 or len(line) > 100 or line.endswith((".", ",", ";", ":")):
        return False
    return bool(NUMBERED_HEADING.match(line)) or (line.isupper() and len(line) > 3)


def _split_block(text: str, start: int, end: int) -> list[Unit]:
    """A block becomes a heading, a table (kept whole), or sentences."""
    block = text[start:end]
    lines = block.split("\n")
    if len(lines) >= 2 and sum(bool(TABLE_LINE.match(line)) for line in lines) >= len(lines) * 0.6:
        return [Unit(start, end, "table")]
    units: list[Unit] = []
    offset = start
    # headings may sit on the first line(s) of a block in PDF text, without a blank line after them
    while lines and _is_heading(lines[0]) and len(lines) > 1:
        units.append(Unit(offset, offset + len(lines[0]), "heading"))
        offset += len(lines[0]) + 1
        lines = lines[1:]
    if len(lines) == 1 and _is_heading(lines[0]):
        return [*units, Unit(offset, end, "heading")]
    for s, e in punkt().span_tokenize(text[offset:end]):
        units.append(Unit(offset + s, offset + e, "text"))
    return units


def _split_long(text: str, unit: Unit, budget: int, count: TokenCounter) -> list[Unit]:
    """Lines first, then word windows: for table rows and run-on lists that Punkt leaves whole."""
    pieces: list[tuple[int, int]] = []
    pos = unit.start
    for line in text[unit.start : unit.end].split("\n"):
        if line.strip():
            pieces.append((pos, pos + len(line)))
        pos += len(line) + 1
    if len(pieces) <= 1:
        pieces = [
            (m.start() + unit.start, m.end() + unit.start) for m in re.finditer(r"\S+", text[unit.start : unit.end])
        ]
    counts = count([text[s:e] for s, e in pieces])
    out: list[Unit] = []
    cur_start, cur_tokens = pieces[0][0], 0
    prev_end = pieces[0][0]
    for (s, e), n in zip(pieces, counts, strict=True):
        if cur_tokens and cur_tokens + n > budget:
            out.append(Unit(cur_start, prev_end, unit.kind, cur_tokens))
            cur_start, cur_tokens = s, 0
        cur_tokens += n
        prev_end = e
    out.append(Unit(cur_start, prev_end, unit.kind, cur_tokens))
    return out


def make_units(text: str, budget: int, count: TokenCounter) -> list[Unit]:
    units: list[Unit] = []
    for m in BLOCK.finditer(text):
        units.extend(_split_block(text, m.start(), m.end()))
    for unit, n in zip(units, count([text[u.start : u.end] for u in units]), strict=True):
        unit.tokens = n
    out: list[Unit] = []
    for unit in units:
        out.extend(_split_long(text, unit, budget, count) if unit.tokens > budget else [unit])
    return out


def pack(units: list[Unit], budget: int, overlap: int) -> list[list[Unit]]:
    groups: list[list[Unit]] = []
    current: list[Unit] = []
    tokens = 0
    for unit in units:
        fresh_section = unit.kind == "heading" and tokens > budget // 2
        if current and (tokens + unit.tokens > budget or fresh_section):
            groups.append(current)
            carry: list[Unit] = []
            if not fresh_section:
                for prev in reversed(current):
                    if prev.kind == "heading" or sum(u.tokens for u in carry) + prev.tokens > overlap:
                        break
                    carry.insert(0, prev)
            if carry and sum(u.tokens for u in carry) + unit.tokens > budget:
                carry = []
            current, tokens = carry, sum(u.tokens for u in carry)
        current.append(unit)
        tokens += unit.tokens
    if current:
        groups.append(current)
    return groups


def chunk_document(
    pages: list[Page],
    sha256: str,
    doc_id: str,
    count: TokenCounter,
    budget: int,
    overlap: int,
    min_chars: int,
) -> list[Chunk]:
    text, starts = join_pages(pages)
    if not text.strip():
        return []
    units = make_units(text, budget, count)
    chunks: list[Chunk] = []
    heading = ""
    heading_before: dict[int, str] = {}
    for u in units:
        heading_before[u.start] = heading
        if u.kind == "heading":
            heading = text[u.start : u.end].lstrip("#").strip()
    for group in pack(units, budget, overlap):
        start, end = group[0].start, group[-1].end
        body = text[start:end]
        if len(body.strip()) < min_chars or all(u.kind == "heading" for u in group):
            continue
        first_page = max((number for off, number in starts if off <= start), default=starts[0][1])
        page_offsets = [(0, first_page)] + [(off - start, number) for off, number in starts if start < off < end]
        first_heading = next((text[u.start : u.end] for u in group if u.kind == "heading"), "")
        position = len(chunks)
        chunks.append(
            Chunk(
                chunk_id=chunk_id(sha256, position),
                doc_id=doc_id,
                position=position,
                text=body,
                page_start=page_offsets[0][1],
                page_end=page_offsets[-1][1],
                page_offsets=page_offsets,
                heading=(first_heading.lstrip("#").strip() if group[0].kind == "heading" else heading_before[start]),
            )
        )
    return chunks
