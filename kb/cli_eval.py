"""`kb eval ...`: the evaluations that measure quality (targets live here, not in timed tests)."""

from __future__ import annotations

import json
from pathlib import Path

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
def eval_alignment(folds: int = typer.Option(5, help="Cross-validation folds.")) -> None:
    """Per-label precision/recall/F1 and micro-F1 of framework tagging (k-fold CV on eval/data labels)."""
    from eval.alignment import evaluate_alignment

    kb = _kb()
    try:
        result = evaluate_alignment(kb.tagger, folds=folds)
    finally:
        kb.close()
    table = Table(title=f"Alignment tagging, {result.passages} labelled passages, {folds}-fold CV")
    for col in ("label", "support", "precision", "recall", "F1"):
        table.add_column(col)
    for row in result.per_label:
        table.add_row(row.label, str(row.support), f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}")
    table.add_row("micro", "", f"{result.micro_precision:.3f}", f"{result.micro_recall:.3f}", f"{result.micro_f1:.3f}")
    out.print(table)
    out.print(f"unlabelled passages left unlabelled: {result.unlabelled_kept:.0%}")
    out.print(f"written to {save_result('alignment', result.model_dump())}")
