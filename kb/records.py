"""The record types every layer shares: files → pages → chunks → index → hits → answer.

Defined once here; the CLI's JSON, the app and the tests all speak these shapes.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, field_validator


def page_at(page_offsets: list[tuple[int, int]] | list[list[int]], first_page: int, offset: int) -> int:
    """The page holding character ``offset`` of a text whose pages start at the given (offset, page) pairs."""
    page = first_page
    for start, number in page_offsets:
        if start > offset:
            break
        page = number
    return page


class Page(BaseModel):
    """The text of one page (1-based PDF page index; text files without markers are one page)."""

    number: int
    text: str
    ocr: bool = False
    needs_ocr: bool = False  # no text layer and OCR was unavailable or failed


class DocumentMeta(BaseModel):
    """What a policymaker filters on and a citation names."""

    title: str = ""
    publisher: str = ""
    year: int | None = None
    country: str = ""  # ISO 3166 alpha-2, or a region code such as "EU", "INT"
    doc_type: str = ""  # strategy, law, guideline, report, survey, factsheet, specification, ...
    language: str = ""  # ISO 639-1
    url: str = ""


class Document(BaseModel):
    """One registered document: one set of bytes, possibly under several paths."""

    doc_id: str  # first 16 hex of the sha256
    sha256: str
    paths: list[str] = Field(default_factory=list)
    status: str = "pending"  # pending, indexing, indexed, failed
    pages: int = 0
    ocr_pages: int = 0
    needs_ocr_pages: int = 0
    chunks: int = 0
    language_confidence: float = 0.0
    meta: DocumentMeta = Field(default_factory=DocumentMeta)
    error: str = ""
    added_at: str = ""
    updated_at: str = ""
    indexed_at: str = ""  # when its last point was written (empty for documents indexed before this was kept)

    @property
    def file(self) -> str:
        from pathlib import Path

        return Path(self.paths[0]).name if self.paths else ""


class TagVerdict(StrEnum):
    """Staff's verdict on one framework tag of one passage; re-tagging respects it."""

    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Chunk(BaseModel):
    """A passage sized to the embedding window, with the pages it spans."""

    chunk_id: str  # uuid derived from document hash and position: stable across runs
    doc_id: str
    position: int
    text: str
    page_start: int
    page_end: int
    page_offsets: list[tuple[int, int]] = Field(default_factory=list)  # (char offset in text, page number)
    heading: str = ""
    language: str = ""
    language_confidence: float = 0.0
    labels: dict[str, float] = Field(default_factory=dict)  # framework label id -> score
    label_triggers: dict[str, str] = Field(default_factory=dict)  # label id -> the sentence that speaks for it
    label_reviews: dict[str, TagVerdict] = Field(default_factory=dict)  # staff's verdicts, by label id
    about: list[str] = Field(default_factory=list)  # ISO codes of the countries the passage discusses

    def page_at(self, offset: int) -> int:
        """The page holding the character at ``offset`` of this chunk's text."""
        return page_at(self.page_offsets, self.page_start, offset)


COUNTRY_CODE_ALIASES = {"UK": "GB", "EL": "GR"}  # what people type for the ISO code


def country_code(code: str) -> str:
    """An ISO 3166-1 alpha-2 code as stored: upper case, and GB for UK, GR for EL."""
    code = code.strip().upper()
    return COUNTRY_CODE_ALIASES.get(code, code)


class SearchFilters(BaseModel):
    """Filters a search applies inside the store query; all optional, combinable."""

    languages: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    year_from: int | None = None
    year_to: int | None = None
    doc_types: list[str] = Field(default_factory=list)
    publishers: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    doc_ids: list[str] = Field(default_factory=list)
    objectives: list[str] = Field(default_factory=list)
    about: list[str] = Field(default_factory=list)  # countries discussed (ISO codes), not publisher country

    @field_validator("about")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        return list(dict.fromkeys(country_code(c) for c in codes if c.strip()))

    def is_empty(self) -> bool:
        return not any(v not in (None, []) for v in self.model_dump().values())


class Hit(BaseModel):
    """A passage found by search, ready to cite."""

    chunk_id: str
    doc_id: str
    file: str
    title: str
    publisher: str = ""
    year: int | None = None
    country: str = ""
    doc_type: str = ""
    language: str = ""
    page: int  # where the best-matching sentence sits
    pages: tuple[int, int]
    score: float
    text: str
    snippet: str = ""  # with the matching sentences marked **like this**
    labels: dict[str, float] = Field(default_factory=dict)
    label_triggers: dict[str, str] = Field(default_factory=dict)  # label id -> the sentence that speaks for it
    label_reviews: dict[str, TagVerdict] = Field(default_factory=dict)  # staff's verdicts, by label id
    about: list[str] = Field(default_factory=list)  # countries the passage discusses (ISO codes)
    page_offsets: list[tuple[int, int]] = Field(default_factory=list)  # (char offset in text, page number)

    def page_at(self, offset: int) -> int:
        """The page holding the character at ``offset`` of this hit's text (a quote's own page)."""
        return page_at(self.page_offsets, self.pages[0], offset)


class Citation(BaseModel):
    n: int
    doc_id: str
    file: str
    title: str
    page: int
    quote: str
    language: str = ""
    publisher: str = ""
    year: int | None = None
    chunk_id: str = ""


class AnswerOutcome(StrEnum):
    """What a question got: an answer; the closest evidence, shown as such (it may not answer); or nothing."""

    ANSWER = "answer"
    CLOSEST = "closest-evidence"
    NOT_IN_LIBRARY = "not-in-library"


class Answer(BaseModel):
    question: str
    answer: str
    abstained: bool  # anything but an answer (closest evidence is not one)
    mode: str
    outcome: AnswerOutcome = AnswerOutcome.ANSWER
    confidence: float = 0.0  # probability that the best quoted sentence answers the question (answerability)
    why: str = ""  # the reason for the outcome, in words
    citations: list[Citation] = Field(default_factory=list)
    dropped_claims: int = 0
    objectives: list[str] = Field(default_factory=list)
    coverage: dict = Field(default_factory=dict)
    evidence: list[Hit] = Field(default_factory=list)


class CountryEvidence(BaseModel):
    """One row of a comparison: what the library says about one country on the question, or that it says nothing."""

    country: str  # ISO 3166-1 alpha-2
    name: str
    region_member: bool = False  # one of the 53 Member States of the WHO European Region
    passages: int = 0  # passages about the country under the filters (whatever the question)
    found: bool = False  # evidence cleared the answer's bar
    best_score: float = 0.0
    citations: list[Citation] = Field(default_factory=list)
    mentions: list[str] = Field(default_factory=list)  # how the cited passages name the country ("l'Estonie")
    labels: list[str] = Field(default_factory=list)  # framework labels of the cited passages
    note: str = ""  # why there is no evidence


class Comparison(BaseModel):
    question: str
    query_language: str = ""
    filters: SearchFilters = Field(default_factory=SearchFilters)
    rows: list[CountryEvidence] = Field(default_factory=list)


class SavedSearch(BaseModel):
    """A search or comparison kept by name, with when it was last looked at (what counts as new)."""

    name: str
    kind: str = "search"  # search or compare
    query: str
    filters: SearchFilters = Field(default_factory=SearchFilters)
    countries: list[str] = Field(default_factory=list)  # compare: the chosen countries (empty: all with evidence)
    created_at: str = ""
    last_seen_at: str = ""
    new_passages: int = 0  # passages added since last_seen_at that the search finds relevant
    new_documents: list[str] = Field(default_factory=list)  # titles of the documents those passages come from


class FileStatus(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REMOVED = "removed"
    DUPLICATE = "duplicate"
    FAILED = "failed"


class FileReport(BaseModel):
    """What ingestion made of one file: the row staff see in the ingest report."""

    path: str
    status: FileStatus
    doc_id: str = ""
    pages: int = 0
    ocr_pages: int = 0
    needs_ocr_pages: int = 0
    language: str = ""
    chunks: int = 0
    error: str = ""
    title: str = ""
    seconds: float = 0.0


class IngestProgress(BaseModel):
    """Where a running ingest is: what the terminal's bar and the app's banner show."""

    running: bool = False
    files_total: int = 0
    files_done: int = 0
    current_file: str = ""
    stage: str = ""  # reading, embedding
    pages: int = 0
    passages: int = 0
    ocr_pages: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (
            f"{self.files_done} of {self.files_total} files · {self.pages:,} pages · {self.passages:,} passages · "
            f"{self.ocr_pages} OCR pages" + (f" · {self.failed} failed" if self.failed else "")
        )


class IngestReport(BaseModel):
    files: list[FileReport] = Field(default_factory=list)

    def totals(self) -> dict[str, int]:
        out: dict[str, int] = {s.value: 0 for s in FileStatus}
        for f in self.files:
            out[f.status.value] += 1
        out["files"] = len(self.files)
        out["chunks"] = sum(f.chunks for f in self.files if f.status in (FileStatus.ADDED, FileStatus.UPDATED))
        out["pages"] = sum(f.pages for f in self.files if f.status in (FileStatus.ADDED, FileStatus.UPDATED))
        return out

    def as_json(self) -> dict:
        return {
            "files": [
                f.model_dump(include={"path", "status", "pages", "ocr_pages", "language", "chunks", "error"})
                | {"status": f.status.value}
                for f in self.files
            ],
            "totals": self.totals(),
        }
