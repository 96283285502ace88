"""`kb bench`: ingest throughput, search latency at corpus size and at 20k/100k chunks, and peak memory.

Every measured phase runs in a fresh Python process (a *worker* of this module), so each peak RSS belongs to
that phase alone and no engine inherits another's warm caches:

1. ``ingest``: ingest a fixed slice of the shared corpus into a fresh library (model loaded and alignment tagger
   trained first, reported apart), then encode the *same chunks* again with the embedding model alone, in the
   batches ingestion uses (64 passages per call, in document order); the ratio of the two rates says how much
   of ingestion is the model (goal ≥ 0.8). It also prepares the base set for synthetic libraries: the real
   chunks with their vectors, a few thousand real sentences of those chunks embedded once, and the benchmark
   queries' vectors.
2. ``build``: write one library (the real chunks, or N synthetic chunks) into one engine; time and memory.
3. ``search``: open that library in a new process (open time), run every query through each pipeline at the
   store (the exact call ``Searcher`` makes: both prefetches of 60 candidates, RRF, filters) and end to end
   (``Searcher.search``: query embedding, store, re-scoring, hits with pages), p50/p95 per pipeline.

Synthetic chunks are drawn from the corpus's own text: each is a real passage (chunk or sentence) of one real
document plus two real sentences from anywhere in the slice; its dense vector is the normalised weighted sum of
their real vectors (0.6/0.2/0.2) plus small Gaussian noise, its BM25 vector the merge of their real BM25
vectors, its payload the real document's metadata under a synthetic document id (40 chunks per document).
Embedding 100k synthetic texts would take hours on 2 cores; this keeps realistic vector geometry, vocabulary,
payload size and filter selectivity at a cost of seconds.
"""

from __future__ import annotations

import json
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kb.records import SearchFilters
from kb.settings import PROJECT_ROOT, Settings

DEFAULT_SLICE = (
    "en_EC-DG-SANTE_EHDS-FAQ_2025.pdf",
    "en_WHO_Classification-of-digital-health-interventions-v1_2018.pdf",
    "fr_ANS_tableau-populations-RPPS.pdf",
    "es_AGESIC-Uruguay_Guia-tecnica-servicios-terminologicos-v3.3_2024.pdf",
    "es_AGESIC-Uruguay_Modelo-DNMA-Diccionario-Nacional-Medicamentos_v1.0.pdf",
    "no_KS_innspill-koordinering-digitaliseringsarbeidet-helse_2026.pdf",
    "de_gematik_Leitfaden-Pseudonymisierung-ePA-Forschungsdatenzentrum_2024.md",
    "it_MinSalute_Piattaforma-Telemedicina-ed-Ecosistema-FSE.md",
)
QUERIES = (
    "How should health data access bodies handle requests for secondary use of electronic health data?",
    "What rights do patients have over their electronic health records under the EHDS?",
    "classification of digital health interventions for health workers",
    "national digital health strategy governance and financing",
    "pseudonymisation of health data for research",
    "cybersecurity of hospitals and healthcare providers",
    "Quels sont les principes de la doctrine du numérique en santé ?",
    "interopérabilité des systèmes d'information de santé",
    "¿Qué es el diccionario nacional de medicamentos?",
    "servicios terminológicos SNOMED CT",
    "koordinering av digitaliseringsarbeidet i helse- og omsorgssektoren",
    "Pseudonymisierung von FHIR-Ressourcen für das Forschungsdatenzentrum",
    "piattaforma nazionale di telemedicina e fascicolo sanitario elettronico",
    "telemedicine and remote consultations",
    "opt-out from secondary use of health data",
    "data minimisation and anonymisation techniques",
)
PIPELINES: dict[str, tuple[str, SearchFilters | None]] = {
    "dense": ("dense", None),
    "hybrid": ("hybrid", None),
    "hybrid+filter": ("hybrid", SearchFilters(languages=["en"], year_from=2020)),
}
CHUNKS_PER_SYNTHETIC_DOC = 40
UPSERT_BATCH = 256
INGEST_BATCH = 64  # passages per embedding call during ingestion (ingest.pipeline.UPSERT_BATCH)
NS = uuid.UUID("3d5e0f43-9a0e-4f6b-8f1e-7c1b2a9d4e10")
RESULTS = PROJECT_ROOT / "eval" / "results"


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2), "n": len(a)}


def disk_mb(path: Path) -> float:
    """Blocks really used (the edge WAL and mmap files are sparse: their apparent size is mostly holes)."""
    return round(sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file()) / 1e6, 1)


def worker_settings(overrides: dict) -> Settings:
    return Settings(**{"qdrant_url": None, **overrides})


# --- worker 1: ingest, the model's own rate, and the base set -------------------------------------------------
def worker_ingest(args: dict) -> dict:
    from index.text import sentence_spans
    from kb.service import KnowledgeBase

    settings = worker_settings(args["settings"])
    kb = KnowledgeBase(settings)
    started = time.perf_counter()
    _ = kb.embedder.model
    if kb.tagger is not None:
        _ = kb.tagger.models  # trains on first use (embeds its training passages): a one-off, reported apart
    warmup_s = time.perf_counter() - started

    started = time.perf_counter()
    report = kb.ingest([Path(p) for p in args["files"]])
    ingest_s = time.perf_counter() - started
    ingest_rss = peak_rss_mb()
    totals = report.totals()

    points = sorted(kb.store.scroll(with_dense=True), key=lambda p: (p.payload["doc_id"], p.payload["position"]))
    texts = [p.payload["text"] for p in points]
    started = time.perf_counter()
    for doc_id in dict.fromkeys(p.payload["doc_id"] for p in points):  # ingestion's batches: per document, 64
        doc_texts = [p.payload["text"] for p in points if p.payload["doc_id"] == doc_id]
        for i in range(0, len(doc_texts), INGEST_BATCH):
            kb.embedder.encode_passages(doc_texts[i : i + INGEST_BATCH])
    encode_s = time.perf_counter() - started

    # the base set for synthetic libraries
    rng = np.random.default_rng(args["seed"])
    chunks = []
    for p in points:
        payload = {k: v for k, v in p.payload.items() if k != "_dense"}
        sparse = kb.sparse.encode_document(payload["text"], payload.get("language") or "en")
        chunks.append({"id": p.id, "dense": np.asarray(p.payload["_dense"], dtype=np.float32), "sparse": sparse,
                       "payload": payload})  # fmt: skip
    sentences = []
    for ci, c in enumerate(chunks):
        text = c["payload"]["text"]
        for a, b in sentence_spans(text):
            if b - a >= 40:
                sentences.append({"chunk": ci, "text": " ".join(text[a:b].split())})
    if len(sentences) > args["base_sentences"]:
        keep = sorted(rng.choice(len(sentences), args["base_sentences"], replace=False))
        sentences = [sentences[i] for i in keep]
    started = time.perf_counter()
    vectors = kb.embedder.encode_passages([s["text"] for s in sentences]) if sentences else np.zeros((0, 1))
    sentences_s = time.perf_counter() - started
    for s, v in zip(sentences, vectors, strict=True):
        lang = chunks[s["chunk"]]["payload"].get("language") or "en"
        s["dense"], s["sparse"] = v.astype(np.float32), kb.sparse.encode_document(s["text"], lang)
    queries = []
    for q in args["queries"]:
        qv = kb.searcher.prepare(q)
        queries.append({"text": q, "dense": qv.dense, "sparse": kb.sparse.encode_query(q, qv.language or "en")})
    with open(args["base"], "wb") as fh:
        pickle.dump({"chunks": chunks, "sentences": sentences, "queries": queries, "dim": kb.embedder.dim}, fh)
    kb.close()
    chunks_n = totals["chunks"]
    return {
        "files": len(args["files"]), "failed": totals["failed"], "pages": totals["pages"], "chunks": chunks_n,
        "warmup_s": round(warmup_s, 1), "ingest_s": round(ingest_s, 1),
        "pages_per_s": round(totals["pages"] / ingest_s, 2), "chunks_per_s": round(chunks_n / ingest_s, 2),
        "model_encode_s": round(encode_s, 1), "model_chunks_per_s": round(len(texts) / encode_s, 2),
        "ratio": round((chunks_n / ingest_s) / (len(texts) / encode_s), 3),
        "ingest_peak_rss_mb": ingest_rss, "base_sentences": len(sentences),
        "base_sentences_per_s": round(len(sentences) / sentences_s, 1) if sentences else 0.0,
        "engine": settings.store_engine,
    }  # fmt: skip


# --- synthetic chunks ------------------------------------------------------------------------------------------
def _merge_sparse(parts: list, cap: float) -> tuple[list[int], list[float]]:
    acc: dict[int, float] = {}
    for sp in parts:
        for i, v in zip(sp.indices, sp.values, strict=True):
            acc[i] = min(cap, acc.get(i, 0.0) + v)
    items = sorted(acc.items())
    return [i for i, _ in items], [round(v, 4) for _, v in items]


def synthetic_points(base: dict, n: int, seed: int, k1: float = 1.2):
    """The first ``n`` synthetic chunks (the same first 20k whatever ``n``): see the module docstring."""
    from index.sparse import SparseVector
    from index.store import StoredPoint

    chunks, sentences = base["chunks"], base["sentences"]
    by_doc: dict[str, list[dict]] = {}
    for c in chunks:
        by_doc.setdefault(c["payload"]["doc_id"], []).append(c)
    for s in sentences:
        by_doc.setdefault(chunks[s["chunk"]]["payload"]["doc_id"], []).append({**s, "payload": None})
    docs = sorted(by_doc)
    rng = np.random.default_rng(seed)
    sigma = 0.1 / np.sqrt(base["dim"])  # noise of norm ~0.1 around a unit vector
    for i in range(n):
        doc_n = i // CHUNKS_PER_SYNTHETIC_DOC
        real_doc = docs[doc_n % len(docs)]
        pool = by_doc[real_doc]
        host = pool[int(rng.integers(len(pool)))]
        a, b = (sentences[int(j)] for j in rng.integers(len(sentences), size=2))
        v = 0.6 * host["dense"] + 0.2 * a["dense"] + 0.2 * b["dense"] + rng.normal(0, sigma, base["dim"])
        v = (v / np.linalg.norm(v)).astype(np.float32)
        indices, values = _merge_sparse([host["sparse"], a["sparse"], b["sparse"]], cap=k1 + 1)
        real = host["payload"] or chunks[host["chunk"]]["payload"]
        text = f"{host['text'] if 'text' in host else real['text']} {a['text']} {b['text']}"
        pid = str(uuid.uuid5(NS, f"synthetic:{i}"))
        payload = {
            **real, "chunk_id": pid, "doc_id": f"syn{doc_n:06d}", "file": f"synthetic-{doc_n:06d}.pdf",
            "title": f"{real.get('title', '')} (synthetic {doc_n})", "position": i % CHUNKS_PER_SYNTHETIC_DOC,
            "text": text, "page_offsets": [[0, real.get("page_start", 1)]],
        }  # fmt: skip
        yield StoredPoint(id=pid, dense=v.tolist(), sparse=SparseVector(indices=indices, values=values),
                          payload=payload)  # fmt: skip


def corpus_points(base: dict):
    from index.store import StoredPoint

    for c in base["chunks"]:
        yield StoredPoint(id=c["id"], dense=c["dense"].tolist(), sparse=c["sparse"], payload=c["payload"])


# --- worker 2: build one library into one engine -------------------------------------------------------------
def worker_build(args: dict) -> dict:
    from index.store import open_store

    with open(args["base"], "rb") as fh:
        base = pickle.load(fh)
    settings = worker_settings(args["settings"])
    points = corpus_points(base) if args["size"] == "corpus" else synthetic_points(base, args["size"], args["seed"])
    store = open_store(settings)
    store.ensure_collection(base["dim"])
    written, started, gen_s = 0, time.perf_counter(), 0.0
    while True:
        t = time.perf_counter()
        batch = [p for _, p in zip(range(UPSERT_BATCH), points, strict=False)]
        gen_s += time.perf_counter() - t
        if not batch:
            break
        store.upsert(batch)
        written += len(batch)
    write_s = time.perf_counter() - started - gen_s
    started = time.perf_counter()
    store.close()  # qdrant-edge: flush + optimizer pass (vacuum/merge; no HNSW below KB_EDGE_HNSW_MIN_POINTS)
    close_s = time.perf_counter() - started
    return {
        "points": written, "write_s": round(write_s, 1), "points_per_s": round(written / write_s, 1),
        "generate_s": round(gen_s, 1), "close_s": round(close_s, 1), "build_peak_rss_mb": peak_rss_mb(),
        "disk_mb": disk_mb(settings.home),
    }  # fmt: skip


# --- worker 3: search a library in a fresh process -----------------------------------------------------------
def worker_search(args: dict) -> dict:
    from index.sparse import SparseEncoder
    from index.store import open_store

    with open(args["base"], "rb") as fh:
        queries = pickle.load(fh)["queries"]
    settings = worker_settings(args["settings"])
    started = time.perf_counter()
    store = open_store(settings)
    total = store.count()
    open_s = time.perf_counter() - started
    rounds = args["rounds"]
    out: dict = {"points": total, "open_s": round(open_s, 2), "store": {}, "e2e": {}}

    def store_query(q: dict, mode: str, filters: SearchFilters | None):
        sparse = q["sparse"] if mode == "hybrid" else None
        return store.query(q["dense"], sparse, filters, limit=settings.candidates, candidates=settings.candidates,
                           rrf_k=settings.rrf_k)  # fmt: skip

    for q in queries[:3]:  # warm-up: page cache, lazy structures
        store_query(q, "hybrid", PIPELINES["hybrid+filter"][1])
    budget, min_n = args["budget_s"], 5  # slow engines stop a pipeline after its time budget (n is reported)
    for name, (mode, filters) in PIPELINES.items():
        ms, hits, began = [], [], time.perf_counter()
        for q in [q for _ in range(rounds) for q in queries]:
            if len(ms) >= min_n and time.perf_counter() - began > budget:
                break
            t = time.perf_counter()
            res = store_query(q, mode, filters)
            ms.append(1000 * (time.perf_counter() - t))
            hits.append(len(res))
        out["store"][name] = percentiles(ms) | {"mean_hits": round(statistics.mean(hits), 1)}
    out["filter_share"] = round(store.count(PIPELINES["hybrid+filter"][1]) / max(1, total), 3)
    out["store_peak_rss_mb"] = peak_rss_mb()

    if args["e2e"]:
        from index.embedder import Embedder
        from index.search import Searcher

        s = settings
        searcher = Searcher(s, store, Embedder(s), SparseEncoder(s.bm25_k1, s.bm25_b, s.bm25_avg_len))
        for q in queries[:3]:
            searcher.search(q["text"])
        for name, (mode, filters) in PIPELINES.items():
            ms, began = [], time.perf_counter()
            for q in queries:
                if len(ms) >= min_n and time.perf_counter() - began > budget:
                    break
                t = time.perf_counter()
                searcher.search(q["text"], filters, mode=mode)
                ms.append(1000 * (time.perf_counter() - t))
            out["e2e"][name] = percentiles(ms)
        out["e2e_peak_rss_mb"] = peak_rss_mb()
    store.close()
    return out


WORKERS: dict[str, Callable[[dict], dict]] = {"ingest": worker_ingest, "build": worker_build, "search": worker_search}


def run_worker(name: str, args: dict, workdir: Path, timeout: float | None = None) -> dict:
    """Run one worker in a fresh interpreter; its result comes back as JSON."""
    request, result = workdir / f"{name}-request.json", workdir / f"{name}-result.json"
    request.write_text(json.dumps(args, default=str), encoding="utf-8")
    result.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "eval.bench", name, str(request), str(result)], cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"bench worker '{name}' failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data = json.loads(result.read_text(encoding="utf-8"))
    data["wall_s"] = round(time.perf_counter() - started, 1)
    return data


# --- the whole benchmark -------------------------------------------------------------------------------------
def run_bench(
    settings: Settings,
    corpus: Path,
    files: list[str],
    sizes: list[int],
    engines: list[str],
    rounds: int = 2,
    e2e: bool = True,
    budget_s: float = 60.0,
    base_sentences: int = 2000,
    seed: int = 13,
    ingest_engine: str | None = None,
    workdir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="kb-bench-")) if own else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    keep = {"embed_model", "embed_batch_size", "embed_threads", "model_cache_dir", "ocr_enabled", "catalogue_csv",
            "metadata_csv", "frameworks_file", "alignment_training_file", "edge_hnsw_min_points", "candidates",
            "rrf_k", "rerank", "collection"}  # fmt: skip
    common = {k: v for k, v in settings.model_dump(mode="json").items() if k in keep}
    base = work / "base.pkl"
    ingest_engine = ingest_engine or ("qdrant-edge" if "qdrant-edge" in engines else engines[0])
    result: dict = {
        "machine": {"cpus": _cpus(), "python": sys.version.split()[0], "load_avg_start": _load()},
        "settings": {"engines": engines, "sizes": sizes, "rounds": rounds, "e2e": e2e, "seed": seed,
                     "budget_s": budget_s, "candidates": settings.candidates, "queries": len(QUERIES),
                     "filter": PIPELINES["hybrid+filter"][1].model_dump(exclude_defaults=True)},
        "synthetic": "each synthetic chunk = one real passage of a real document + two real sentences of the slice; "
        "dense = normalised 0.6/0.2/0.2 sum of their real e5 vectors + noise (norm ~0.1); BM25 = merge of their "
        "real BM25 vectors; payload = the real document's metadata under a synthetic doc id (40 chunks/doc)",
    }  # fmt: skip
    try:
        log(f"ingest: {len(files)} files from {corpus} (a fresh library, {ingest_engine})")
        result["ingest"] = run_worker(
            "ingest",
            {"settings": {**common, "home": str(work / "ingest-home"), "store_engine": ingest_engine},
             "files": [str(corpus / f) for f in files], "queries": list(QUERIES), "base": str(base),
             "base_sentences": base_sentences, "seed": seed},
            work,
        )  # fmt: skip
        ing = result["ingest"]
        log(f"  {ing['pages']} pages, {ing['chunks']} chunks in {ing['ingest_s']} s; model alone "
            f"{ing['model_chunks_per_s']} chunks/s; ratio {ing['ratio']}")  # fmt: skip
        result["search"] = []
        for size in ["corpus", *sizes]:
            for engine in engines:
                home = work / f"{engine}-{size}"
                shutil.rmtree(home, ignore_errors=True)
                st = {**common, "home": str(home), "store_engine": engine}
                log(f"build: {engine}, {size} chunks")
                build = run_worker("build", {"settings": st, "base": str(base), "size": size, "seed": seed}, work)
                log(f"  {build['points']} points, {build['points_per_s']} points/s, close {build['close_s']} s; "
                    f"search ...")  # fmt: skip
                search = run_worker(
                    "search",
                    {"settings": st, "base": str(base), "rounds": rounds, "e2e": e2e, "budget_s": budget_s},
                    work,
                )
                log("  " + ", ".join(f"{k} p50 {v['p50']} ms" for k, v in search["store"].items()))
                result["search"].append({"engine": engine, "size": size, "build": build, **search})
                shutil.rmtree(home, ignore_errors=True)
        result["machine"]["load_avg_end"] = _load()
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _load() -> list[float]:
    """1/5/15-minute load averages: other processes on the machine slow every number here."""
    import os

    return [round(x, 2) for x in os.getloadavg()]


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def save(result: dict, path: Path | None = None) -> Path:
    path = path or RESULTS / "bench.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path


if __name__ == "__main__":  # a worker: python -m eval.bench NAME REQUEST.json RESULT.json
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    name, request, target = sys.argv[1:4]
    data = WORKERS[name](json.loads(Path(request).read_text(encoding="utf-8")))
    Path(target).write_text(json.dumps(data, default=str), encoding="utf-8")
