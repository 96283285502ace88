"""`kb bench`: ingest throughput, search latency at corpus size and at synthetic 20k/100k chunks, peak memory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kb.cli import app, console, out
from kb.settings import PROJECT_ROOT, get_settings

SHARED_CORPUS = PROJECT_ROOT.parent / "shared" / "corpus"
ENGINES = ("qdrant-local", "qdrant-edge")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def bench(
    corpus: Annotated[Path, typer.Option(help="Folder holding the benchmark slice.")] = SHARED_CORPUS,
    slice_: Annotated[
        str, typer.Option("--slice", help="'default' (8 files, 6 languages, 141 pages), 'all', or FILE,FILE...")
    ] = "default",
    sizes: Annotated[str, typer.Option(help="Synthetic library sizes in chunks, comma-separated ('' for none).")] = (
        "20000,100000"
    ),
    engines: Annotated[str, typer.Option(help="Embedded engines to compare, comma-separated.")] = ",".join(ENGINES),
    rounds: Annotated[int, typer.Option(help="Passes over the 16 queries for store-level latency.")] = 2,
    e2e: Annotated[bool, typer.Option(help="Also time full searches (query embedding, re-scoring, hits).")] = True,
    budget: Annotated[
        float, typer.Option(help="Seconds per pipeline after which a slow engine stops timing (min 5 queries).")
    ] = 60.0,
    base_sentences: Annotated[int, typer.Option(help="Real sentences embedded once to build synthetic chunks.")] = 2000,
    output: Annotated[Path | None, typer.Option("--out", help="JSON result (default eval/results/bench.json).")] = None,
    workdir: Annotated[Path | None, typer.Option(help="Keep the libraries and workers' files here.")] = None,
) -> None:
    """Ingest pages/s and chunks/s against the model's own rate; search p50/p95 per engine and size; peak RSS."""
    from eval.bench import DEFAULT_SLICE, run_bench, save

    engine_list = _csv(engines)
    unknown = [e for e in engine_list if e not in ENGINES]
    if unknown or not engine_list:
        raise typer.BadParameter(f"engines must be among {', '.join(ENGINES)}")
    try:
        size_list = [int(s.replace("_", "")) for s in _csv(sizes)]
    except ValueError as exc:
        raise typer.BadParameter("--sizes takes integers, e.g. 20000,100000") from exc
    if not corpus.is_dir():
        raise typer.BadParameter(f"no corpus folder at {corpus}")
    if slice_ == "default":
        files = list(DEFAULT_SLICE)
    elif slice_ == "all":
        files = sorted(p.name for p in corpus.iterdir() if p.is_file() and p.name not in get_settings().ignore_names)
    else:
        files = _csv(slice_)
    missing = [f for f in files if not (corpus / f).is_file()]
    if missing:
        raise typer.BadParameter(f"not in {corpus}: {', '.join(missing)}")

    result = run_bench(
        get_settings(), corpus, files, size_list, engine_list, rounds=rounds, e2e=e2e, budget_s=budget,
        base_sentences=base_sentences, workdir=workdir, log=lambda m: console.print(f"[dim]{m}[/]"),
    )  # fmt: skip
    print_result(result)
    out.print(f"written to {save(result, output)}")


def print_result(result: dict) -> None:
    ing = result["ingest"]
    table = Table(title=f"Ingest: {ing['files']} files, {ing['pages']} pages, {ing['chunks']} chunks ({ing['engine']})")
    for col in ("pages/s", "chunks/s", "model alone chunks/s", "ratio (goal ≥ 0.8)", "ingest s", "warm-up s",
                "peak RSS MB"):  # fmt: skip
        table.add_column(col, justify="right")
    table.add_row(
        f"{ing['pages_per_s']:.2f}", f"{ing['chunks_per_s']:.2f}", f"{ing['model_chunks_per_s']:.2f}",
        f"[{'green' if ing['ratio'] >= 0.8 else 'red'}]{ing['ratio']:.2f}[/]", f"{ing['ingest_s']:.1f}",
        f"{ing['warmup_s']:.1f}", f"{ing['ingest_peak_rss_mb']:.0f}",
    )  # fmt: skip
    out.print(table)

    table = Table(title="Search latency, ms (store: the engine's query; e2e: embed query + store + re-score + hits)")
    for col in ("engine", "chunks", "pipeline", "store p50", "store p95", "n", "e2e p50", "e2e p95", "n "):
        table.add_column(col, justify="right" if col not in ("engine", "pipeline") else "left")
    for row in result["search"]:
        for name, st in row["store"].items():
            e2e = row.get("e2e", {}).get(name)
            table.add_row(
                row["engine"], f"{row['points']:,}" + (" (corpus)" if row["size"] == "corpus" else ""), name,
                f"{st['p50']:.1f}", f"{st['p95']:.1f}", str(st["n"]), f"{e2e['p50']:.0f}" if e2e else "-",
                f"{e2e['p95']:.0f}" if e2e else "-", str(e2e["n"]) if e2e else "-",
            )  # fmt: skip
        table.add_section()
    out.print(table)

    table = Table(title="Build, open and memory per library")
    for col in ("engine", "chunks", "write points/s", "close s", "disk MB", "open s", "build RSS MB",
                "search RSS MB (store)", "search RSS MB (+model)", "filter keeps"):  # fmt: skip
        table.add_column(col, justify="right" if col != "engine" else "left")
    for row in result["search"]:
        b = row["build"]
        table.add_row(
            row["engine"], f"{row['points']:,}", f"{b['points_per_s']:,.0f}", f"{b['close_s']:.1f}",
            f"{b['disk_mb']:.0f}", f"{row['open_s']:.2f}", f"{b['build_peak_rss_mb']:.0f}",
            f"{row['store_peak_rss_mb']:.0f}", f"{row.get('e2e_peak_rss_mb', 0):.0f}" if row.get("e2e") else "-",
            f"{row['filter_share']:.0%}",
        )  # fmt: skip
    out.print(table)
    out.print(f"[dim]synthetic chunks: {result['synthetic']}[/]")
    m = result["machine"]
    out.print(f"[dim]{m['cpus']} CPUs; load average at start {m['load_avg_start']}, at end {m.get('load_avg_end')}[/]")
