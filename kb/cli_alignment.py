"""`kb tag`, `kb coverage`, `kb retag`: framework alignment from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alignment.reviews import PassageTags
from kb.cli import AsJson, _emit, _kb, app, console, out
from kb.records import TagVerdict


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
            for item, tags in zip(items, kb.tag([i["text"] for i in items]), strict=True):
                _emit({"id": item.get("id"), "labels": _labels_json(tags)})
            return
        if not text:
            raise typer.BadParameter("give TEXT or --texts-file")
        [tags] = kb.tag([text])
        [countries] = kb.countries_discussed([text])
        names = {lab.id: lab.short for lab in kb.tagger.frameworks.labels}
    finally:
        kb.close()
    if as_json:
        _emit(
            {
                "labels": _labels_json(tags),
                "countries": [{"code": code, "mention": surface} for code, surface in countries.items()],
            }
        )
        return
    if countries:
        out.print("countries discussed: " + ", ".join(f"{c} ({m})" for c, m in countries.items()))
    if not tags.labels:
        out.print("No framework objective fits this text.")
    for label, score in sorted(tags.labels.items(), key=lambda x: -x[1]):
        out.print(f"{label:10} {score:.2f}  {names[label]}")
        out.print(f"           because: “{tags.triggers.get(label, '')}”", highlight=False)


def _labels_json(tags: PassageTags) -> list[dict]:
    """Labels best first, each with its score and the sentence that triggered it."""
    return [
        {"id": k, "score": v, "trigger": tags.triggers.get(k, "")}
        for k, v in sorted(tags.labels.items(), key=lambda x: -x[1])
    ]


@app.command("review-tag")
def review_tag(
    doc_id: Annotated[str, typer.Argument(help="The passage's document id (kb list).")],
    chunk_id: Annotated[str, typer.Argument(help="The passage id (kb search --json gives it).")],
    label: Annotated[str, typer.Argument(help="A framework label id, e.g. GSDH.SO2.")],
    verdict: Annotated[
        str, typer.Option(help="confirmed (kept by every re-tag), rejected (never given again) or clear.")
    ] = "confirmed",
    as_json: AsJson = False,
) -> None:
    """Confirm or reject one framework tag of one passage; re-tagging respects it."""
    if verdict not in {*TagVerdict, "clear"}:
        raise typer.BadParameter("confirmed, rejected or clear", param_hint="--verdict")
    kb = _kb()
    try:
        tags = kb.review_tag(doc_id, chunk_id, label, None if verdict == "clear" else TagVerdict(verdict))
    except (KeyError, ValueError, TimeoutError) as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from exc
    finally:
        kb.close()
    if as_json:
        _emit(tags)
        return
    out.print(f"{label} {verdict} on {chunk_id}; the passage is now tagged: {', '.join(tags['labels']) or 'none'}")


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
