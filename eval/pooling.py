"""`kb eval pool`: the pages our pipelines return for the corpus questions that nobody has judged yet.

The question writer listed the pages holding the verbatim answer span; other pages often state the same fact in
other words. Pooling (as in TREC) collects every page that any pipeline or the answerer returns in its top k,
drops those already gold or judged, and writes the rest with their text, for a person to judge into
``eval/data/corpus_judgments.jsonl``. Re-run it after a retrieval change: ``kb eval retrieval`` shows the judged
share of the hits, and a falling share means the pool needs topping up.
"""

from __future__ import annotations

from pathlib import Path

from eval.retrieval import CORPUS_JUDGMENTS, CORPUS_QUESTIONS, PIPELINES, gold_for, read_judgments, read_questions
from ingest.readers import read_pages
from kb.service import KnowledgeBase


def unjudged_pages(
    kb: KnowledgeBase, corpus: Path, k: int = 10, answers: bool = True, only: set[str] | None = None
) -> list[dict]:
    """``only``: the question ids to pool (default all)."""
    judgments = read_judgments(CORPUS_JUDGMENTS)
    questions = [q for q in read_questions(CORPUS_QUESTIONS, judgments) if only is None or q.id in only]
    judged = {(j.id, j.file, j.page) for j in judgments}
    pool: dict[tuple[str, str, int], dict] = {}

    def add(q, file: str, page: int, text: str, source: str) -> None:
        if gold_for(q, file, page, text) or (q.id, file, page) in judged:
            return
        entry = pool.setdefault((q.id, file, page), {"id": q.id, "question": q.question, "type": q.type,
                                                     "answer_text": q.answer_text, "file": file, "page": page,
                                                     "sources": []})  # fmt: skip
        entry["sources"].append(source)

    for q in questions:
        for name, (mode, rerank) in PIPELINES.items():
            for rank, h in enumerate(kb.search(q.question, k=k, mode=mode, rerank=rerank).hits, start=1):
                add(q, h.file, h.page, h.text, f"{name}#{rank}")
        if answers:
            for c in kb.ask(q.question).citations:
                add(q, c.file, c.page, c.quote, f"answer[{c.n}]")
    texts: dict[str, dict[int, str]] = {}
    for entry in pool.values():
        if entry["file"] not in texts:
            pages, _ = read_pages(corpus / entry["file"], kb.settings)
            texts[entry["file"]] = {p.number: p.text for p in pages}
        entry["page_text"] = texts[entry["file"]].get(entry["page"], "")
    return sorted(pool.values(), key=lambda e: (e["id"], e["file"], e["page"]))
