"""`kb compare` and `kb saved`: one question across countries, and searches kept by name with what is new."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from index.store import IndexBusyError
from kb.cli import (
    About,
    AsJson,
    Country,
    DocType,
    FileOpt,
    Lang,
    Objective,
    Publisher,
    YearFrom,
    YearTo,
    _busy,
    _emit,
    _kb,
    app,
    console,
    make_filters,
    out,
)

saved_app = typer.Typer(help="Saved searches and comparisons, with the passages added since you last looked.")
app.add_typer(saved_app, name="saved")


@app.command()
def compare(
    question: Annotated[str, typer.Argument(help="The question, in any language.")],
    countries: Annotated[
        list[str] | None,
        typer.Option("--country", help="Country to compare (ISO code); repeatable. Default: those most discussed."),
    ] = None,
    lang: Lang = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    doc_type: DocType = None,
    publisher: Publisher = None,
    objective: Objective = None,
    all_countries: Annotated[
        bool, typer.Option("--all-countries", help="Without --country: every country the library discusses.")
    ] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write the comparison as CSV here.")] = None,
    md_path: Annotated[Path | None, typer.Option("--markdown", help="Also write a Markdown brief here.")] = None,
    as_json: AsJson = False,
) -> None:
    """Compare countries on one question: each country's best evidence with document and page, or "no evidence"."""
    from kb.export import comparison_csv, comparison_markdown

    filters = make_filters(lang, None, doc_type, publisher, None, objective, year_from, year_to)
    kb = _kb()
    try:
        result = kb.compare(question, countries, filters, every_country=all_countries)
        names = {lab.id: lab.short for lab in kb.tagger.frameworks.labels} if kb.tagger else {}
    except IndexBusyError as exc:
        _busy(exc)
    finally:
        kb.close()
    if csv_path:
        csv_path.write_text(comparison_csv(result), encoding="utf-8")
    if md_path:
        md_path.write_text(comparison_markdown(result, names), encoding="utf-8")
    if as_json:
        _emit(result.model_dump(mode="json"))
        return
    if not result.rows:
        out.print("[yellow]No passage of the library discusses any country under these filters.[/]")
    for row in result.rows:
        head = f"[bold]{row.country} · {row.name}[/] ({row.passages} passages)"
        if not row.found:
            out.print(f"{head}\n  [yellow]no evidence in the library[/]: {row.note}\n")
            continue
        out.print(head)
        for c in row.citations:
            out.print(f"  “{c.quote}” — {c.title or c.file}, p. {c.page} [{c.language}]", markup=False)
        if row.labels:
            out.print("  objectives: " + ", ".join(row.labels))
        out.print("")


@saved_app.callback(invoke_without_command=True)
def saved(ctx: typer.Context, as_json: AsJson = False) -> None:
    """List saved searches with the number of new passages since each was last looked at."""
    if ctx.invoked_subcommand is not None:
        return
    kb = _kb()
    try:
        items = kb.saved_searches()
    except IndexBusyError as exc:
        _busy(exc)
    finally:
        kb.close()
    if as_json:
        _emit([s.model_dump(mode="json") for s in items])
        return
    if not items:
        out.print("No saved searches. Save one with `kb saved add NAME QUERY`.")
        return
    table = Table(title=f"{len(items)} saved searches")
    for col in ("name", "kind", "query", "filters", "last looked", "new passages"):
        table.add_column(col, overflow="fold")
    for s in items:
        shown = s.filters.model_dump(exclude_defaults=True) | ({"countries": s.countries} if s.countries else {})
        table.add_row(s.name, s.kind, s.query, str(shown or ""), s.last_seen_at[:19], str(s.new_passages))
    out.print(table)


@saved_app.command("add")
def saved_add(
    name: Annotated[str, typer.Argument(help="A name for the search.")],
    query: Annotated[str, typer.Argument(help="The query or question.")],
    kind: Annotated[str, typer.Option(help="search or compare.")] = "search",
    countries: Annotated[list[str] | None, typer.Option("--compare-country", help="compare: a country.")] = None,
    lang: Lang = None,
    country: Country = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    doc_type: DocType = None,
    publisher: Publisher = None,
    file: FileOpt = None,
    objective: Objective = None,
    about: About = None,
) -> None:
    """Save a search (or a comparison) by name; saving under a taken name replaces it."""
    filters = make_filters(lang, country, doc_type, publisher, file, objective, year_from, year_to, about)
    kb = _kb()
    try:
        kept = kb.save_search(name, query, filters, kind=kind, countries=countries)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    finally:
        kb.close()
    console.print(f"saved {kept.kind} {kept.name!r}: {kept.query}")


@saved_app.command("show")
def saved_show(
    name: Annotated[str, typer.Argument(help="The saved search.")],
    keep_unseen: Annotated[bool, typer.Option("--keep-unseen", help="Do not mark the search as looked at.")] = False,
    as_json: AsJson = False,
) -> None:
    """The passages added since the search was last looked at; marks it as looked at."""
    kb = _kb()
    try:
        hits = kb.new_passages(name)
        if not keep_unseen:
            kb.mark_seen(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/]")
        raise typer.Exit(2) from exc
    except IndexBusyError as exc:
        _busy(exc)
    finally:
        kb.close()
    if as_json:
        _emit({"name": name, "new_passages": len(hits), "hits": [h.model_dump(exclude={"page_offsets"}) for h in hits]})
        return
    out.print(f"{len(hits)} new passages for {name!r}")
    for i, h in enumerate(hits, 1):
        out.print(f"{i}. {h.title} — {h.file} p. {h.page}: {h.snippet[:200]}", markup=False)


@saved_app.command("remove")
def saved_remove(name: Annotated[str, typer.Argument(help="The saved search.")]) -> None:
    """Forget a saved search."""
    kb = _kb()
    try:
        gone = kb.delete_saved_search(name)
    finally:
        kb.close()
    if not gone:
        console.print(f"[red]no saved search named {name!r}[/]")
        raise typer.Exit(2)
    console.print(f"removed {name!r}")
