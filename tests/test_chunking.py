"""Chunks follow structure, fit the model's window and know exactly which pages they span."""

from __future__ import annotations

from pathlib import Path

from index.embedder import Embedder
from ingest.chunker import chunk_document, chunk_id
from ingest.readers import read_pages
from kb.records import Page
from kb.settings import Settings


def words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def test_chunk_spanning_two_pages_maps_each_character_to_its_page() -> None:
    pages = [
        Page(number=4, text="Governance needs a national body. It coordinates all programmes."),
        Page(number=5, text="Funding comes from the national budget. Regions co-finance pilots."),
    ]
    [chunk] = chunk_document(pages, "sha", "doc", words, budget=100, overlap=0, min_chars=10)
    assert (chunk.page_start, chunk.page_end) == (4, 5)
    assert chunk.page_at(chunk.text.index("coordinates")) == 4
    assert chunk.page_at(chunk.text.index("Regions")) == 5


def test_headings_start_new_chunks_and_are_remembered() -> None:
    # 17 six-word sentences: the second chunk is more than half full when the next heading arrives
    body = " ".join(f"Sentence number {i} about interoperability standards." for i in range(17))
    pages = [Page(number=1, text=f"1. Interoperability\n{body}\n\n2. Workforce\nNurses need digital skills training.")]
    chunks = chunk_document(pages, "sha", "doc", words, budget=60, overlap=0, min_chars=10)
    assert chunks[-1].text.startswith("2. Workforce")
    assert chunks[-1].heading == "2. Workforce"
    assert chunks[0].heading == "1. Interoperability"


def test_markdown_tables_stay_whole() -> None:
    table = "| Profession | Count |\n|---|---|\n| Médecin | 230000 |\n| Infirmier | 640000 |"
    pages = [Page(number=1, text=f"Intro sentence here.\n\n{table}\n\nClosing remark.")]
    chunks = chunk_document(pages, "sha", "doc", words, budget=200, overlap=0, min_chars=5)
    assert any(table in c.text for c in chunks)


def test_overlap_repeats_the_last_sentence() -> None:
    text = " ".join(f"Claim {i} is stated here in full." for i in range(10))
    chunks = chunk_document([Page(number=1, text=text)], "sha", "doc", words, budget=20, overlap=7, min_chars=5)
    assert len(chunks) > 2
    last_sentence = chunks[0].text.split(". ")[-1]
    assert chunks[1].text.startswith(last_sentence.rstrip("."))


def test_chunk_ids_are_stable_and_distinct() -> None:
    assert chunk_id("abc", 1) == chunk_id("abc", 1)
    assert chunk_id("abc", 1) != chunk_id("abc", 2) != chunk_id("abd", 1)


def test_real_chunks_fit_the_model_window_and_their_pages(
    shared_corpus: Path, base_settings: Settings, embedder: Embedder
) -> None:
    pages, _ = read_pages(shared_corpus / "en_EC-DG-SANTE_EHDS-FAQ_2025.pdf", base_settings)
    chunks = chunk_document(pages, "sha", "doc", embedder.count_tokens, 320, 40, 40)
    counts = embedder.count_tokens([c.text for c in chunks])
    assert max(counts) <= embedder.max_tokens
    assert sum(counts) / len(counts) > 150  # packed, not one sentence per chunk
    by_number = {p.number: " ".join(p.text.split()) for p in pages}
    for c in chunks:
        ends = [start for start, _ in c.page_offsets[1:]] + [len(c.text)]
        for (start, page), end in zip(c.page_offsets, ends, strict=True):
            probe = " ".join(c.text[start:end].split())[:40]
            assert probe in by_number[page], (c.position, page, probe)
