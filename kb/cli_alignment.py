"""`kb tag`, `kb coverage`, `kb retag`: framework alignment from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kb.cli import AsJson, _emit, _kb, app, console, out


@app.command()
def tag(
    text: Annotated[str | None, typer.Argument(help="A passage in any language.")] = None,
    texts_file: Annotated[Path | None, typer.Option(help="JSONL of {id, text}; one {id, labels} line each.")] = None,
    as_json: AsJson = False,
) -> None:
    """Tag text with the framework objectives it supports (GSDH, RDHAP, working groups)."""
    kb = _kb()
    try:
        if texts_file:
            items = [json.loads(line) for line in texts_file.read_text(encoding="utf-8").splitlines() if line.strip()]
            for item, labels in zip(items, kb.tag([i["text"] for i in items]), strict=True):
                _emit({"id": item.get("id"), "labels": [{"id": k, "score": v} for k, v in labels.items()]})
            return
        if not text:
            raise typer.BadParameter("give TEXT or --texts-file")
        [labels] = kb.tag([text])
        [countries] = kb.countries_discussed([text])
        names = {lab.id: lab.short for lab in kb.tagger.frameworks.labels}
    finally:
        kb.close()
    if as_json:
        _emit(
            {
                "labels": [{"id": k, "score": v} for k, v in sorted(labels.items(), key=lambda x: -x[1])],
                "countries": [{"code": code, "mention": surface} for code, surface in countries.items()],
            }
        )
        return
    if countries:
        out.print("countries discussed: " + ", ".join(f"{c} ({m})" for c, m in countries.items()))
    if not labels:
        out.print("No framework objective fits this text.")
    for label, score in sorted(labels.items(), key=lambda x: -x[1]):
        out.print(f"{label:10} {score:.2f}  {names[label]}")


@app.command()
def coverage(
    by: Annotated[
        str, typer.Option("--by", help="country (publisher), about (countries discussed), document or language.")
    ] = "country",
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a heatmap PNG here.")] = None,
    as_json: AsJson = False,
) -> None:
    """Passages per framework objective × country/document/language, with the gaps in words."""
    kb = _kb()
    try:
        cov = kb.coverage(by=by)
    finally:
        kb.close()
    if plot:
        from alignment.coverage import plot_heatmap

        plot_heatmap(cov, str(plot))
        console.print(f"heatmap written to {plot}")
    if as_json:
        _emit(cov.model_dump() | {"matrix": cov.matrix()})
        return
    table = Table(title=f"Passages per objective and {by}")
    table.add_column("objective")
    for col in cov.columns:
        table.add_column(col[:18])
    for lab, row in zip(cov.labels, cov.matrix(), strict=True):
        table.add_row(lab, *[str(v) if v else "[red]–[/]" for v in row])
    out.print(table)
    for gap in cov.gaps:
        out.print(f"• {gap}")


@app.command()
def retag(force: Annotated[bool, typer.Option(help="Re-tag every passage, not only stale ones.")] = False) -> None:
    """Re-apply the frameworks to stored passages from their stored vectors (no re-embedding)."""
    kb = _kb()
    try:
        n = kb.retag(force=force)
    finally:
        kb.close()
    out.print(f"re-tagged {n} passages")
