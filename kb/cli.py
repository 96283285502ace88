"""The ``kb`` command line: thin wrappers over ``kb.service``; ``--json`` gives the machine contract."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from index.store import IndexBusyError
from kb.records import FileStatus, SearchFilters
from kb.settings import Settings, get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Digital-health evidence knowledge base.")
model_app = typer.Typer(help="Embedding model management.")
corpus_app = typer.Typer(help="The seed library.")
app.add_typer(model_app, name="model")
app.add_typer(corpus_app, name="corpus")
console = Console(stderr=True)
out = Console()


def _kb():
    from kb.service import KnowledgeBase

    return KnowledgeBase(get_settings())


def _emit(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def _questions(path: Path) -> Iterator[dict]:
    """The {id, question} lines of a --queries-file (JSONL), blank lines skipped."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def _busy(exc: IndexBusyError) -> None:
    console.print(f"[red]Index busy:[/] {exc}")
    raise typer.Exit(3)


Lang = Annotated[list[str] | None, typer.Option("--lang", help="Document language (ISO 639-1); repeatable.")]
Country = Annotated[list[str] | None, typer.Option("--country", help="Country code (FR, NO, EU, INT...); repeatable.")]
DocType = Annotated[list[str] | None, typer.Option("--type", help="Document type (strategy, law...); repeatable.")]
Publisher = Annotated[list[str] | None, typer.Option("--publisher", help="Publisher; repeatable.")]
FileOpt = Annotated[list[str] | None, typer.Option("--file", help="File base name; repeatable.")]
Objective = Annotated[list[str] | None, typer.Option("--objective", help="Framework label id; repeatable.")]
About = Annotated[
    list[str] | None, typer.Option("--about", help="Country the passage discusses (ISO code: EE, FR); repeatable.")
]
YearFrom = Annotated[int | None, typer.Option("--year-from", help="Earliest publication year.")]
YearTo = Annotated[int | None, typer.Option("--year-to", help="Latest publication year.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def make_filters(lang, country, doc_type, publisher, file, objective, year_from, year_to, about=None) -> SearchFilters:
    return SearchFilters(
        languages=lang or [], countries=[c.upper() for c in country or []], doc_types=doc_type or [],
        publishers=publisher or [], files=file or [], objectives=objective or [], year_from=year_from,
        year_to=year_to, about=about or [],
    )  # fmt: skip


# --- ingestion -----------------------------------------------------------------------------------------------
@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: the drop folder).")] = None,
    as_json: AsJson = False,
) -> None:
    """Ingest new and changed files, remove deleted ones, and print the ingest report."""
    kb = _kb()
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, disable=as_json or not console.is_terminal,
        ) as bar:  # fmt: skip
            tasks: dict[str, int] = {}
            overall = bar.add_task("library", total=None)

            def progress(file: str, stage: str, done: int, total: int) -> None:
                if stage == "scanned":
                    bar.update(overall, total=total, description=f"library: {kb.ingest_progress.summary()}")
                    return
                if file not in tasks:
                    tasks[file] = bar.add_task(file[:50], total=total)
                bar.update(tasks[file], completed=done, total=total, description=f"{stage:9} {file[:50]}")

            def file_done(row, done: int, total: int) -> None:
                name = Path(row.path).name
                if name in tasks:
                    bar.remove_task(tasks.pop(name))
                bar.update(overall, completed=done, total=total, description=f"library: {kb.ingest_progress.summary()}")
                if not as_json and not console.is_terminal:  # a log (make run's output piped): one line per file
                    console.print(f"{done}/{total} {row.status.value:9} {name} — {kb.ingest_progress.summary()}")

            report = kb.ingest(paths or None, progress=progress, file_done=file_done)
    except IndexBusyError as exc:
        _busy(exc)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    finally:
        kb.close()
    if as_json:
        _emit(report.as_json())
        return
    table = Table(title="Ingest report")
    for col in ("file", "status", "pages", "ocr", "lang", "chunks", "note"):
        table.add_column(col)
    colour = {FileStatus.FAILED: "red", FileStatus.ADDED: "green", FileStatus.UPDATED: "yellow"}
    for f in report.files:
        note = f.error or (f"{f.needs_ocr_pages} pages need OCR" if f.needs_ocr_pages else "")
        table.add_row(Path(f.path).name, f"[{colour.get(f.status, 'white')}]{f.status.value}[/]", str(f.pages),
                      str(f.ocr_pages), f.language, str(f.chunks), note)  # fmt: skip
    out.print(table)
    out.print(" ".join(f"{k}={v}" for k, v in report.totals().items()))


@app.command()
def docs(as_json: AsJson = False) -> None:
    """The document registry: every document with its status, pages, language and metadata."""
    kb = _kb()
    try:
        documents = kb.documents()
    finally:
        kb.close()
    if as_json:
        _emit([d.model_dump() | {"file": d.file} for d in documents])
        return
    table = Table(title=f"{len(documents)} documents")
    for col in ("doc_id", "file", "status", "pages", "ocr", "lang", "chunks", "year", "country", "type", "title"):
        table.add_column(col, overflow="fold")
    for d in documents:
        m = d.meta
        table.add_row(d.doc_id, d.file, d.status, str(d.pages), str(d.ocr_pages), m.language, str(d.chunks),
                      str(m.year or ""), m.country, m.doc_type, m.title[:60])  # fmt: skip
    out.print(table)


# --- search --------------------------------------------------------------------------------------------------
@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for, in any language.")] = None,
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = 10,
    lang: Lang = None,
    country: Country = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    doc_type: DocType = None,
    publisher: Publisher = None,
    file: FileOpt = None,
    objective: Objective = None,
    about: About = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or sparse.")] = "hybrid",
    no_rerank: Annotated[bool, typer.Option("--no-rerank", help="Skip re-scoring of fused candidates.")] = False,
    queries_file: Annotated[Path | None, typer.Option(help="JSONL of {id, question}; one result line each.")] = None,
    as_json: AsJson = False,
) -> None:
    """Hybrid cross-lingual search with filters; hits cite document and page."""
    filters = make_filters(lang, country, doc_type, publisher, file, objective, year_from, year_to, about)
    kb = _kb()
    try:
        if queries_file:
            for item in _questions(queries_file):
                res = kb.search(item["question"], filters, k=k, mode=mode, rerank=not no_rerank)
                _emit({"id": item.get("id"), **res.as_json()})
            return
        if not query:
            raise typer.BadParameter("give a QUERY or --queries-file")
        res = kb.search(query, filters, k=k, mode=mode, rerank=not no_rerank)
    except IndexBusyError as exc:
        _busy(exc)
    finally:
        kb.close()
    if as_json:
        _emit(res.as_json())
        return
    if not res.hits:
        out.print("[yellow]No passages found.[/]")
    for i, h in enumerate(res.hits, 1):
        out.print(f"[bold]{i}. {h.title}[/] ({h.publisher}, {h.year or 'n.d.'}) [{h.language}] — {h.file} p. {h.page}")
        if h.about:
            out.print(f"   about: {', '.join(h.about)}")
        out.print(f"   {h.snippet}\n")


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question, in any language.")] = None,
    mode: Annotated[str | None, typer.Option(help="evidence (quotes, no LLM) or llm (needs KB_LLM_MODEL).")] = None,
    lang: Lang = None,
    country: Country = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    doc_type: DocType = None,
    publisher: Publisher = None,
    file: FileOpt = None,
    objective: Objective = None,
    about: About = None,
    queries_file: Annotated[Path | None, typer.Option(help="JSONL of {id, question}; one answer line each.")] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--no-strict",
            help="Answer only with sentences that answer the question; else the closest evidence, said to be only "
            "that, or 'not in the library' (default: KB_ANSWERABILITY_GATE).",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """A cited answer from the library, or a plain statement that the evidence is not there."""
    from answer.llm import LLMUnavailableError

    filters = make_filters(lang, country, doc_type, publisher, file, objective, year_from, year_to, about)
    kb = _kb()
    try:
        if queries_file:
            for item in _questions(queries_file):
                _emit({"id": item.get("id"), **answer_json(kb.ask(item["question"], filters, mode, strict))})
            return
        if not question:
            raise typer.BadParameter("give a QUESTION or --queries-file")
        answer = kb.ask(question, filters, mode, strict)
    except IndexBusyError as exc:
        _busy(exc)
    except LLMUnavailableError as exc:
        console.print(f"[red]LLM unavailable:[/] {exc}")
        raise typer.Exit(2) from exc
    finally:
        kb.close()
    if as_json:
        _emit(answer_json(answer))
        return
    colour = "yellow" if answer.abstained else "green"
    out.print(f"[{colour}]{answer.mode} mode · {answer.outcome.value}[/] — {escape(answer.why)}\n")
    out.print(answer.answer, markup=False)
    for c in answer.citations:
        out.print(f"[{c.n}] {c.title or c.file} ({c.publisher}, {c.year or 'n.d.'}) — {c.file}, p. {c.page}")
    if answer.abstained:
        for h in answer.evidence:
            out.print(f"  closest: {h.file} p. {h.page}: {h.snippet[:160]}", markup=False)
    if answer.dropped_claims:
        out.print(f"[yellow]{answer.dropped_claims} unsupported sentence(s) dropped by the claim check.[/]")
    if answer.objectives:
        out.print("objectives: " + ", ".join(answer.objectives))


def answer_json(answer) -> dict:
    """The `kb ask --json` contract."""
    return {
        "question": answer.question, "answer": answer.answer, "abstained": answer.abstained, "mode": answer.mode,
        "outcome": answer.outcome.value, "confidence": answer.confidence, "why": answer.why,
        "citations": [c.model_dump(include={"n", "doc_id", "file", "title", "page", "quote", "language"})
                      for c in answer.citations],
        "dropped_claims": answer.dropped_claims, "objectives": answer.objectives, "coverage": answer.coverage,
    }  # fmt: skip


# --- models and corpus ---------------------------------------------------------------------------------------
@model_app.command("prepare")
def model_prepare() -> None:
    """Convert and verify the offline embedding model (once; cached)."""
    from index.embedder import resolve_model_path

    path = resolve_model_path(get_settings())
    console.print(f"embedding model ready: {path}")


@corpus_app.command("fetch")
def corpus_fetch(
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request (connect, each read).")] = 30.0,
    as_json: AsJson = False,
) -> None:
    """Download the missing seed documents listed in corpus/sources.csv into the drop folder.

    Exit 0: every document present or fetched, or failed only softly (offline, no direct link, shipped
    conversion); 1: a download failed for a real reason (HTTP error, not a PDF, truncated...); 2: no catalogue.
    """
    from rich.markup import escape
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from kb.corpus_fetch import Status, exit_code, fetch_corpus

    s = get_settings()
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=console, transient=True, disable=as_json or not console.is_terminal,
        ) as bar:  # fmt: skip
            tasks: dict[str, int] = {}

            def progress(file: str, done: int, total: int | None) -> None:
                if file not in tasks:
                    tasks[file] = bar.add_task(file[:50], total=total)
                bar.update(tasks[file], completed=done, total=total)

            results = fetch_corpus(s.catalogue_csv, s.corpus_dir, timeout_s=timeout, progress=progress)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    code = exit_code(results)
    counts = {st.value: sum(r.status is st for r in results) for st in Status}
    if as_json:
        _emit({"folder": str(s.corpus_dir), "exit_code": code, "totals": counts,
               "results": [r.model_dump(mode="json") for r in results]})  # fmt: skip
        raise typer.Exit(code)
    colour = {Status.FAILED: "red", Status.DOWNLOADED: "green", Status.HASH_CHANGED: "yellow"}
    for r in results:
        why = f" ({r.reason.value})" if r.reason else ""
        line = f"[{colour.get(r.status, 'white')}]{r.status.value:12}[/] {escape(r.file)}{why} {escape(r.detail)}"
        console.print(line, soft_wrap=True)
    have = counts["present"] + counts["downloaded"] + counts["hash-changed"]
    console.print(f"{have} of {len(results)} seed documents in {s.corpus_dir} ("
                  + ", ".join(f"{k}={v}" for k, v in counts.items()) + ")", soft_wrap=True)  # fmt: skip
    if counts["failed"]:
        hint = "only offline / no direct link: nothing to fix" if code == 0 else "some downloads failed (see above)"
        console.print(f"[yellow]{counts['failed']} not fetched, {hint}. Copy documents into {s.corpus_dir} by hand, "
                      "or run `make run CORPUS=DIR` with a folder that holds them.[/]", soft_wrap=True)  # fmt: skip
    raise typer.Exit(code)


@app.command("settings")
def show_settings() -> None:
    """Every setting with its environment variable, current value and meaning."""
    s = get_settings()
    table = Table(title="Settings (environment variables)")
    for col in ("variable", "value", "meaning"):
        table.add_column(col, overflow="fold")
    for name, field in Settings.model_fields.items():
        table.add_row(f"KB_{name.upper()}", str(getattr(s, name)), field.description or "")
    out.print(table)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


# Commands defined in their own modules register themselves on `app` when imported.
from kb import cli_alignment, cli_bench, cli_compare, cli_eval, cli_ops  # noqa: E402,F401

if __name__ == "__main__":
    main()
