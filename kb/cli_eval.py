"""`kb eval ...`: the evaluations that measure quality (targets live here, not in timed tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kb.cli import _kb, app, out

eval_app = typer.Typer(help="Evaluations: retrieval, answers, alignment.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
RESULTS = Path("eval") / "results"


def save_result(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path


@eval_app.command("alignment")
def eval_alignment(
    folds: int = typer.Option(5, help="Cross-validation folds."),
    seed: int = typer.Option(0, help="Seed of the fold split (scores move by about 0.005 between seeds)."),
    random_split: bool = typer.Option(
        True, help="Also the random-fold row (second): passages of a document can sit in training and test."
    ),
    thresholds: bool = typer.Option(False, help="Also a grid of gate and label thresholds on the by-document split."),
) -> None:
    """Framework tagging on documents the tagger never saw (by-document CV, first), on random folds, and on the
    held-apart passages: per label, per language, and how many unlabelled passages stay unlabelled."""
    from eval.alignment import evaluate_heldout, labelled, out_of_fold, score, threshold_grid

    kb = _kb()
    try:
        tagger = kb.tagger
        gold = labelled(tagger)
        gate, probs = out_of_fold(tagger, gold, folds, seed, by_document=True)
        results = [score(tagger, gold, gate, probs, "by document", folds, seed)]
        if random_split:
            results.append(score(tagger, gold, *out_of_fold(tagger, gold, folds, seed, False), "random", folds, seed))
        heldout = evaluate_heldout(tagger)
        grid = (
            threshold_grid(tagger, gold, gate, probs, [0.3, 0.4, 0.5, 0.55, 0.6, 0.7], [0.3, 0.35, 0.4, 0.5, 0.6])
            if thresholds
            else []
        )
    finally:
        kb.close()
    summary = Table(title=f"Alignment tagging, {results[0].passages} labelled passages, {folds}-fold CV")
    for col in ("split", "passages", "precision", "recall", "micro-F1", "unlabelled kept"):
        summary.add_column(col)
    for r in [*results, *([heldout] if heldout else [])]:
        summary.add_row(
            r.split, str(r.passages), f"{r.micro_precision:.3f}", f"{r.micro_recall:.3f}", f"{r.micro_f1:.3f}",
            f"{r.unlabelled_kept:.0%}",
        )  # fmt: skip
    out.print(summary)
    lead = results[0]
    table = Table(title="By document, per label")
    for col in ("label", "support", "precision", "recall", "F1"):
        table.add_column(col)
    for row in lead.per_label:
        table.add_row(row.label, str(row.support), f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}")
    out.print(table)
    for name, groups in (("language", lead.per_language), ("sample", lead.per_sample)):
        out.print(f"By document, per {name}: " + "; ".join(
            f"{g.group} ({g.passages}) F1 {g.micro_f1:.3f} R {g.micro_recall:.3f} kept {g.unlabelled_kept:.0%}"
            for g in groups
        ))  # fmt: skip
    if heldout:
        out.print(
            f"held-apart ({heldout.passages} passages from documents outside the shared corpus, never used for "
            f"fitting): unlabelled kept {heldout.unlabelled_kept:.0%}"
        )
    if grid:
        table = Table(title="By document: gate × label thresholds")
        for col in ("gate", "label", "micro-F1", "recall", "unlabelled kept"):
            table.add_column(col)
        for g in grid:
            table.add_row(
                f"{g.gate_threshold}", f"{g.label_threshold}", f"{g.micro_f1:.3f}", f"{g.micro_recall:.3f}",
                f"{g.unlabelled_kept:.0%}",
            )  # fmt: skip
        out.print(table)
    data = {
        "by_document": lead.model_dump(),
        "random": results[1].model_dump() if random_split else None,
        "heldout": heldout.model_dump() if heldout else None,
        "thresholds": [g.model_dump() for g in grid],
    }
    out.print(f"written to {save_result('alignment', data)}")


SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
COVID_QA = SHARED / "eval-data" / "covid-qa" / "covidQA_200423.json"
ALL_PIPELINES = "bm25,dense,sentences,hybrid,hybrid+rerank"
CorpusDir = Annotated[Path, typer.Option(help="Folder of the corpus the question set is written over.")]
Library = Annotated[Path | None, typer.Option(help="Use this KB home (default: KB_HOME/eval/corpus).")]
WriterGold = Annotated[
    bool,
    typer.Option(help="Count only the question writer's gold pages, not those added by pooled judgments."),
]


@contextmanager
def _corpus_kb(corpus: Path, library: Path | None) -> Iterator:
    """The evaluation library with the corpus ingested (incremental: cheap when already done), closed after."""
    kb = _eval_kb("corpus", library)
    try:
        kb.ingest([corpus])
        yield kb
    finally:
        kb.close()


def _eval_kb(name: str, library: Path | None):
    from eval.retrieval import eval_library
    from kb.service import KnowledgeBase
    from kb.settings import get_settings

    base = get_settings()
    settings = base.model_copy(update={"home": library}) if library else eval_library(base, name)
    return KnowledgeBase(settings)


def _scores_table(title: str, evaluation, groups: bool) -> Table:
    table = Table(title=title)
    for col in ("pipeline", "group", "n", "R@1", "R@5", "R@10", "MRR@10", "nDCG@10", "page acc.", "judged", "p50 ms"):
        table.add_column(col)
    for res in evaluation.results:
        for group, s in res.scores.items():
            if group != "all" and not groups:
                continue
            judged = f"{res.judged_share:.3f}" if res.judged_share is not None else ""
            extra = (f"{res.page_accuracy:.3f}", judged, f"{res.latency_ms_p50:.0f}") if group == "all" else ("",) * 3
            table.add_row(res.pipeline, group, str(s.n), f"{s.recall_at_1:.3f}", f"{s.recall_at_5:.3f}",
                          f"{s.recall_at_10:.3f}", f"{s.mrr_at_10:.3f}", f"{s.ndcg_at_10:.3f}", *extra)  # fmt: skip
    return table


def _language_table(evaluation) -> Table:
    """How much of the top 10 is in the question's own language, against that language's share of the library."""
    table = Table(title="Share of top-10 hits in the question's language (language bias)")
    for col in ("pipeline", "question language", "own-language share of hits", "share of the library"):
        table.add_column(col)
    for res in evaluation.results:
        for lang, share in res.own_language_share.items():
            lib = evaluation.library_language_share.get(lang, 0.0)
            table.add_row(res.pipeline, lang, f"{share:.3f}", f"{lib:.3f}")
    return table


@eval_app.command("countries")
def eval_countries(
    show_misses: Annotated[bool, typer.Option("--misses", help="List the passages the tagger gets wrong.")] = False,
) -> None:
    """Precision/recall of the countries-discussed tags: the held-apart labels first, then the tuning labels."""
    from alignment.countries import CountryRecognizer
    from eval.countries import HELDOUT_FILE, TUNING_FILE, evaluate_countries
    from kb.settings import get_settings

    recognizer = CountryRecognizer(get_settings().countries_file)
    results = [evaluate_countries(recognizer, path) for path in (HELDOUT_FILE, TUNING_FILE) if path.exists()]
    table = Table(title="Countries discussed (micro-averaged over country codes)")
    for col in ("set", "group", "passages", "gold", "precision", "recall", "F1", "exact sets"):
        table.add_column(col)
    for result in results:
        kind = "held-apart" if result.file == HELDOUT_FILE.name else "tuning"
        for s in result.scores:
            table.add_row(kind, s.group, str(s.passages), str(s.gold_mentions), f"{s.precision:.3f}",
                          f"{s.recall:.3f}", f"{s.f1:.3f}", f"{s.exact:.3f}")  # fmt: skip
    out.print(table)
    if show_misses:
        for result in results:
            for m in result.misses:
                out.print(f"{result.file} {m.id} [{m.language}] extra {m.extra} missed {m.missed}")
    out.print(f"written to {save_result('countries', {'results': [r.model_dump() for r in results]})}")


@eval_app.command("retrieval")
def eval_retrieval(
    corpus: CorpusDir = SHARED / "corpus",
    covid: Annotated[Path, typer.Option(help="COVID-QA file.")] = COVID_QA,
    covid_articles: Annotated[int, typer.Option(help="COVID-QA articles to index (0: skip the external set).")] = 20,
    pipelines: Annotated[str, typer.Option(help="Comma-separated pipelines to compare.")] = ALL_PIPELINES,
    library: Library = None,
    writer_gold: WriterGold = False,
) -> None:
    """Recall@1/5/10, MRR@10, nDCG@10 per pipeline, question type and language; JSON in eval/results."""
    from eval.retrieval import (
        CORPUS_JUDGMENTS,
        CORPUS_QUESTIONS,
        HELDOUT_QUESTIONS,
        SAMEFACT_QUESTIONS,
        evaluate_corpus,
        evaluate_covid,
    )

    chosen = [p.strip() for p in pipelines.split(",") if p.strip()]
    results = {}
    sets = [
        ("corpus", "Corpus questions (tuning)", CORPUS_QUESTIONS, None if writer_gold else CORPUS_JUDGMENTS),
        ("samefact", "Same fact in 6 languages (tuning: language bias)", SAMEFACT_QUESTIONS, None),
        ("heldout", "Held-apart questions (never used to choose settings)", HELDOUT_QUESTIONS, None),
    ]
    kb = _eval_kb("corpus", library)
    try:
        for key, _, path, judgments in sets:
            if path.exists():
                results[key] = evaluate_corpus(kb, corpus, chosen, path, judgments)
    finally:
        kb.close()
    for key, name, _, _ in sets:
        if key in results:
            c = results[key]
            title = f"{name}: {c.documents} documents, {c.chunks} chunks, {c.gold} gold pages"
            out.print(_scores_table(title, c, groups=True))
            out.print(_language_table(c))
    if covid_articles > 0:
        kb = _eval_kb(f"covid-qa-{covid_articles}", None)
        try:
            results["covid"] = evaluate_covid(kb, covid, covid_articles, chosen)
        finally:
            kb.close()
        v = results["covid"]
        out.print(_scores_table(f"{v.question_set}: {v.chunks} chunks", v, groups=False))
    out.print(f"written to {save_result('retrieval', {k: v.model_dump() for k, v in results.items()})}")


@eval_app.command("pool")
def eval_pool(
    out_file: Annotated[Path, typer.Argument(help="JSONL file to write the unjudged pages to.")],
    corpus: CorpusDir = SHARED / "corpus",
    library: Library = None,
    k: Annotated[int, typer.Option(help="Hits per pipeline and question to pool.")] = 10,
) -> None:
    """Pages any pipeline or the answerer returns that are neither gold nor judged yet (to judge by hand)."""
    from eval.pooling import unjudged_pages

    with _corpus_kb(corpus, library) as kb:
        rows = unjudged_pages(kb, corpus, k=k)
    out_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out.print(f"{len(rows)} unjudged pages for {len({r['id'] for r in rows})} questions written to {out_file}")


@eval_app.command("latency")
def eval_latency(
    corpus: CorpusDir = SHARED / "corpus",
    library: Library = None,
    rounds: Annotated[int, typer.Option(help="Passes over the question set.")] = 2,
) -> None:
    """Search latency p50/p95 per pipeline on the ingested corpus, model loaded (the interactive cost)."""
    from eval.latency import measure_latency

    with _corpus_kb(corpus, library) as kb:
        rows = measure_latency(kb, rounds=rounds)
    table = Table(title="Search latency after warm-up (ms)")
    for col in ("pipeline", "queries", "p50", "p95", "max"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["pipeline"], str(r["queries"]), f"{r['p50']:.0f}", f"{r['p95']:.0f}", f"{r['max']:.0f}")
    out.print(table)
    out.print(f"written to {save_result('latency', {'rows': rows})}")


@eval_app.command("answerability")
def eval_answerability(
    corpus: CorpusDir = SHARED / "corpus",
    library: Library = None,
    fit: Annotated[bool, typer.Option(help="Write the fitted model to KB_ANSWERABILITY_MODEL_FILE.")] = False,
) -> None:
    """Fit the answerability model on the tuning questions; print its cross-validated bar and weights."""
    from eval.answerability import fit as fit_model
    from eval.retrieval import CORPUS_JUDGMENTS

    with _corpus_kb(corpus, library) as kb:
        result = fit_model(kb, CORPUS_JUDGMENTS, kb.settings.answerability_model_file if fit else None)
    out.print(
        f"{result.questions} answerable and {result.no_answer_questions} no-answer tuning questions, "
        f"{result.sentences} candidate sentences ({result.answering_sentences} answer), C={result.regularisation}"
    )
    table = Table(title="Cross-validated (5 folds by question) outcomes by bar")
    for col in ("bar", "abstains on no-answer", "answerable unanswered", "answerable cited correctly"):
        table.add_column(col)
    for row in result.sweep[::5]:
        mark = " ←" if row.threshold == result.cv.threshold else ""
        table.add_row(f"{row.threshold:.2f}{mark}", f"{row.abstain_no_answer:.3f}", f"{row.answerable_unanswered:.3f}",
                      f"{row.answerable_cited_correctly:.3f}")  # fmt: skip
    out.print(table)
    c = result.cv
    out.print(
        f"chosen bar {c.threshold:.2f}: abstains {c.abstain_no_answer:.3f}, unanswered "
        f"{c.answerable_unanswered:.3f}, cited correctly {c.answerable_cited_correctly:.3f}"
    )
    out.print({k: v for k, v in sorted(result.coefficients.items(), key=lambda kv: -abs(kv[1]))})
    out.print(f"written to {save_result('answerability', result.model_dump())}")


@eval_app.command("answers")
def eval_answers(
    corpus: CorpusDir = SHARED / "corpus",
    library: Library = None,
    mode: Annotated[str, typer.Option(help="evidence or llm.")] = "evidence",
    writer_gold: WriterGold = False,
) -> None:
    """Outcomes, citation precision and cited pages on the tuning and the held-apart questions."""
    from eval.answers import evaluate_answers
    from eval.retrieval import CORPUS_JUDGMENTS

    with _corpus_kb(corpus, library) as kb:
        result = evaluate_answers(kb, mode=mode, judgments=None if writer_gold else CORPUS_JUDGMENTS)
    table = Table(title=f"Answers ({result.mode} mode, answer bar {result.threshold}, {result.gold} gold pages)")
    for col in ("questions", "n / no-answer", "citation precision", "cited a page with the answer",
                "cross-lingual cited", "answerable unanswered", "no-answer abstained", "ask p50 ms"):  # fmt: skip
        table.add_column(col)
    for row in result.sets:
        table.add_row(row.name, f"{row.questions} / {row.no_answer_questions}", f"{row.citation_precision:.3f}",
                      f"{row.cited_correctly:.3f}", f"{row.cross_lingual_cited_correctly:.3f}",
                      f"{row.unanswered:.3f}", f"{row.abstain_no_answer:.3f}", f"{row.ask_ms_p50:.0f}")  # fmt: skip
    table.add_row("target", "", "≥ 0.80", "≥ 0.85", "≥ 0.85", "≤ 0.10", "≥ 0.85", "< 1500")
    out.print(table)
    for row in result.sets:
        groups = Table(title=f"{row.name}: by question type and language; outcomes {row.outcomes_answerable} "
                       f"(answerable), {row.outcomes_no_answer} (no-answer)")  # fmt: skip
        for col in ("group", "n", "cited a page with the answer", "unanswered"):
            groups.add_column(col)
        for key, g in row.groups.items():
            groups.add_row(key, str(g.n), f"{g.cited_correctly:.3f}", f"{g.unanswered:.3f}")
        out.print(groups)
    out.print(f"written to {save_result(f'answers-{mode}', result.model_dump())}")
