"""Operations commands: ``kb doctor`` (registry and index agree? repair what a crash left behind)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from index.store import IndexBusyError
from kb.cli import AsJson, _busy, _emit, _kb, app, out


@app.command()
def doctor(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair/--check-only",
            help="Delete partial, stale and orphan points and mark damaged documents for re-indexing "
            "(default: only check).",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Check that the registry and the index agree; exit 1 while problems remain, 3 when the index is busy."""
    kb = _kb()
    try:
        report = kb.doctor(repair=repair)
    except IndexBusyError as exc:
        _busy(exc)
    finally:
        kb.close()
    if as_json:
        _emit(report.as_json())
    else:
        out.print(f"{report.documents} documents, {report.points} points; checks: {', '.join(report.checks)}")
        if report.clean:
            out.print("[green]No problems found.[/]")
        else:
            table = Table(title=f"{len(report.problems)} problem(s)")
            for col in ("check", "document", "problem", "repaired", "action"):
                table.add_column(col, overflow="fold")
            for p in report.problems:
                table.add_row(p.check, p.doc_id or p.path, p.detail, "yes" if p.repaired else "no", p.action)
            out.print(table)
    if report.outstanding:
        raise typer.Exit(1)
