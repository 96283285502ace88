"""`kb eval retrieval`: recall@1/5/10, MRR@10 and nDCG@10 of BM25, dense, fused and fused+reranked search.

Two question sets. Our own (``eval/data/corpus_questions.jsonl``) over ``../shared/corpus``: a hit is relevant
when it comes from a gold file and either its best-sentence page is a gold page or it quotes the gold span. Gold
pages are the question writer's, plus the pages that pooled judgments (``corpus_judgments.jsonl``: every page that
any pipeline or the answerer returned, judged by reading it) found to state the same answer in other words.
COVID-QA (external, English, long articles): a hit is relevant when it holds the gold answer text. Every
baseline runs in the same process over the same index, so the rows are comparable.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from eval.metrics import QuestionScore, Scores, breakdown
from kb.records import Hit
from kb.service import KnowledgeBase
from kb.settings import Settings

EVAL_DATA = Path(__file__).parent / "data"
CORPUS_QUESTIONS = EVAL_DATA / "corpus_questions.jsonl"
NO_ANSWER_QUESTIONS = EVAL_DATA / "no_answer_questions.jsonl"
CORPUS_JUDGMENTS = EVAL_DATA / "corpus_judgments.jsonl"
SAMEFACT_QUESTIONS = EVAL_DATA / "samefact_questions.jsonl"  # one fact asked in 6 languages: the language-bias check
HELDOUT_QUESTIONS = EVAL_DATA / "heldout_questions.jsonl"  # written for issue 16 before tuning; never chooses settings
# name -> (search mode, rerank)
PIPELINES: dict[str, tuple[str, bool]] = {
    "bm25": ("sparse", False),
    "dense": ("dense", False),
    "sentences": ("sentences", False),
    "hybrid": ("hybrid", False),
    "hybrid+rerank": ("hybrid", True),
}


class GoldAnswer(BaseModel):
    file: str
    pages: list[int]
    evidence: str = ""  # a judged page's own answering span (the question's answer_text holds on the writer's pages)


class Judgment(BaseModel):
    """One pooled page judged for one question; the irrelevant ones record what was already read."""

    id: str
    file: str
    page: int
    relevant: bool
    evidence: str = ""
    why: str = ""


class Question(BaseModel):
    id: str
    question: str
    lang: str = "en"
    type: str = "same-language"
    answers: list[GoldAnswer] = Field(default_factory=list)
    answer_text: str = ""


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_judgments(path: Path = CORPUS_JUDGMENTS) -> list[Judgment]:
    return [Judgment(**row) for row in _jsonl(path)] if path.exists() else []


def read_questions(path: Path, judgments: Path | list[Judgment] | None = None) -> list[Question]:
    """The questions; with ``judgments`` (a file, or its rows already read), the pages judged relevant join
    each question's gold pages."""
    questions = [Question(**row) for row in _jsonl(path)]
    by_id = {q.id: q for q in questions}
    for j in read_judgments(judgments) if isinstance(judgments, Path) else judgments or []:
        if j.relevant and j.id in by_id:
            by_id[j.id].answers.append(GoldAnswer(file=j.file, pages=[j.page], evidence=j.evidence))
    return questions


def normalise(text: str) -> str:
    """Case-, accent-, hyphenation- and whitespace-insensitive form for "does the hit quote the answer"."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", text)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    return " ".join(re.findall(r"\w+", text))


def quotes(hit_text: str, answer: str) -> bool:
    return bool(answer) and normalise(answer) in normalise(hit_text)


def gold_for(q: Question, file: str, page: int, text: str) -> bool:
    """A gold file, and either a gold page or the gold span quoted: the one rule for hits, citations and pools."""
    return any(file == g.file and (page in g.pages or quotes(text, q.answer_text)) for g in q.answers)


def corpus_relevant(q: Question, hit: Hit) -> bool:
    return gold_for(q, hit.file, hit.page, hit.text)


def page_exact(q: Question, hit: Hit) -> bool:
    """The cited page itself is a gold page (the page-of-best-sentence rule, measured)."""
    return any(hit.file == g.file and hit.page in g.pages for g in q.answers)


class PipelineResult(BaseModel):
    pipeline: str
    scores: dict[str, Scores]
    page_accuracy: float  # among relevant hits ranked first, the share whose cited page is a gold page
    judged_share: float | None = None  # share of returned hits whose page is gold or was judged (pool coverage)
    latency_ms_p50: float
    # per query language: the share of top-10 hits in that language (compare with the library's share)
    own_language_share: dict[str, float] = Field(default_factory=dict)
    per_question: list[dict] = Field(default_factory=list)


class RetrievalEval(BaseModel):
    question_set: str
    gold: str = "writer"  # "writer": the question writer's pages only; "pooled": plus the judged pages
    documents: int
    chunks: int
    results: list[PipelineResult]
    library_language_share: dict[str, float] = Field(default_factory=dict)  # share of passages per language


def run_pipelines(
    kb: KnowledgeBase,
    questions: list[Question],
    relevant: Callable[[Question, Hit], bool],
    groups: Callable[[Question], dict[str, str]],
    pipelines: list[str],
    k: int = 10,
    judged: Callable[[Question, Hit], bool] | None = None,
) -> list[PipelineResult]:
    """``judged`` says whether a hit's page was ever judged; its share of the top k shows when the pool is stale."""
    results = []
    kb.search("warm-up", k=1)  # load the model and open the store before timing
    for name in pipelines:
        mode, rerank = PIPELINES[name]
        scored, timings, exact, firsts, seen, shown = [], [], 0, 0, 0, 0
        own: dict[str, list[float]] = {}
        for q in questions:
            started = time.perf_counter()
            hits = kb.search(q.question, k=k, mode=mode, rerank=rerank).hits
            timings.append(time.perf_counter() - started)
            if hits:
                own.setdefault(q.lang, []).append(sum(h.language == q.lang for h in hits) / len(hits))
            flags = [relevant(q, h) for h in hits]
            if judged is not None:
                seen, shown = seen + sum(f or judged(q, h) for h, f in zip(hits, flags, strict=True)), shown + len(hits)
            scored.append(QuestionScore(id=q.id, groups=groups(q), relevant=flags, ideal_hits=1))
            first = next((h for h, f in zip(hits, flags, strict=True) if f), None)
            if first is not None and q.answers:
                firsts += 1
                exact += page_exact(q, first)
        timings.sort()
        results.append(
            PipelineResult(
                pipeline=name,
                scores=breakdown(scored),
                page_accuracy=round(exact / firsts, 4) if firsts else 0.0,
                judged_share=round(seen / shown, 4) if shown else None,
                latency_ms_p50=round(1000 * timings[len(timings) // 2], 1) if timings else 0.0,
                own_language_share={lang: round(sum(v) / len(v), 3) for lang, v in sorted(own.items())},
                per_question=[{"id": s.id, "rank": _first_relevant(s.relevant)} for s in scored],
            )
        )
    return results


def _first_relevant(flags: list[bool]) -> int | None:
    return next((i + 1 for i, f in enumerate(flags) if f), None)


def eval_library(base: Settings, name: str) -> Settings:
    """Settings for an evaluation library kept apart from the user's own (under KB_HOME/eval/NAME)."""
    home = base.home / "eval" / name
    return base.model_copy(update={"home": home, "corpus_dir": home / "corpus", "metadata_csv": home / "metadata.csv"})


def evaluate_corpus(
    kb: KnowledgeBase,
    corpus: Path,
    pipelines: list[str],
    path: Path = CORPUS_QUESTIONS,
    judgments: Path | None = CORPUS_JUDGMENTS,
) -> RetrievalEval:
    """Ingest the shared corpus (incremental: cheap when already done) and score our question set."""
    kb.ingest([corpus])
    judged = read_judgments(judgments) if judgments else []
    questions = read_questions(path, judged)
    seen = {(j.id, j.file, j.page) for j in judged}
    results = run_pipelines(kb, questions, corpus_relevant, lambda q: {"type": q.type, "lang": q.lang}, pipelines,
                            judged=(lambda q, h: (q.id, h.file, h.page) in seen) if judgments else None)  # fmt: skip
    docs = [d for d in kb.documents() if d.status == "indexed"]
    return RetrievalEval(question_set=path.stem, gold="pooled" if judgments else "writer", documents=len(docs),
                         chunks=sum(d.chunks for d in docs), results=results,
                         library_language_share=language_shares(kb))  # fmt: skip


def language_shares(kb: KnowledgeBase) -> dict[str, float]:
    counts = kb.store.facets(None, keys=("language",)).get("language", {})
    total = sum(counts.values()) or 1
    return {lang: round(n / total, 3) for lang, n in sorted(counts.items())}


# --- COVID-QA ------------------------------------------------------------------------------------------------
def covid_articles(path: Path, limit: int) -> Iterator[tuple[int, str, list[Question]]]:
    """The first ``limit`` articles (by document id, so every run uses the same slice) with their questions."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs = sorted((p for article in data for p in article["paragraphs"]), key=lambda p: p["document_id"])
    for p in paragraphs[:limit]:
        qs = [
            Question(id=f"covid-{qa['id']}", question=qa["question"], lang="en", type="covid-qa",
                     answer_text=qa["answers"][0]["text"].strip())
            for qa in p["qas"]
        ]  # fmt: skip
        yield p["document_id"], p["context"], qs


def covid_relevant(q: Question, hit: Hit) -> bool:
    """The hit holds the gold answer (answers cut by a chunk boundary count when 80% of their words are in)."""
    if quotes(hit.text, q.answer_text):
        return True
    answer = normalise(q.answer_text).split()
    text = set(normalise(hit.text).split())
    return len(answer) >= 8 and sum(w in text for w in answer) / len(answer) >= 0.8


def evaluate_covid(kb: KnowledgeBase, dataset: Path, articles: int, pipelines: list[str]) -> RetrievalEval:
    folder = kb.settings.corpus_dir
    folder.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    for doc_id, context, qs in covid_articles(dataset, articles):
        target = folder / f"covid-qa-{doc_id}.txt"
        if not target.exists():
            target.write_text(context, encoding="utf-8")
        questions += qs
    kb.ingest([folder])
    results = run_pipelines(kb, questions, covid_relevant, lambda q: {}, pipelines)
    docs = [d for d in kb.documents() if d.status == "indexed"]
    return RetrievalEval(question_set=f"covid-qa ({articles} articles)", documents=len(docs),
                         chunks=sum(d.chunks for d in docs), results=results)  # fmt: skip
