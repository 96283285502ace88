"""One contract for every embedded vector store engine (qdrant-client local mode and qdrant-edge).

Small synthetic points (random unit vectors, hand-built sparse vectors, the payload keys filters and citations
use) let each test compare an engine with a plain-Python oracle: what a filter keeps, how cosine ranks, what
IDF and RRF must do. A final test ingests one real document with the edge engine and searches it.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from index.sparse import SparseVector
from index.store import IndexBusyError, StoredPoint, VectorStore, open_store
from index.store.base import FACET_KEYS
from kb.records import SearchFilters
from kb.settings import Settings
from tests.conftest import REPO, SMALL_DOCS, copy_docs

ENGINES = ("qdrant-local", "qdrant-edge")
DIM = 16
NS = uuid.UUID("0b7c3f0e-7a43-4d7e-9d0e-5a1c6f1b2e77")
SHARED, RARE = 1, 999  # a term every regular point has, and one only the odd point has
DOCS = {
    "docA": {"doc_language": "en", "country": "EU", "year": 2018, "doc_type": "law", "publisher": "EC",
             "file": "a.pdf"},
    "docB": {"doc_language": "fr", "country": "FR", "year": 2020, "doc_type": "strategy", "publisher": "ANS",
             "file": "b.pdf"},
    "docC": {"doc_language": "no", "country": "NO", "year": 2022, "doc_type": "report", "publisher": "Helsedir",
             "file": "c.pdf"},
    "docD": {"doc_language": "en", "country": "INT", "year": 2024, "doc_type": "strategy", "publisher": "WHO",
             "file": "d.pdf"},
}  # fmt: skip
LABELS = [[], ["GSDH.SO1"], ["EU.SP2", "GSDH.SO1"], ["EU.SP2"], ["SPI.WG3"]]
PER_DOC = len(LABELS)


def pid(doc_id: str, position: int) -> str:
    return str(uuid.uuid5(NS, f"{doc_id}:{position}"))


def make_points() -> list[StoredPoint]:
    rng = np.random.default_rng(7)
    points = []
    for d, (doc_id, meta) in enumerate(DOCS.items()):
        for pos in range(PER_DOC):
            v = rng.standard_normal(DIM)
            sparse = SparseVector(indices=[SHARED, 100 + d, 200 + pos], values=[0.5, 0.5 + 0.1 * pos, 0.7])
            payload = {**meta, "doc_id": doc_id, "labels": LABELS[pos], "position": pos, "text": f"{doc_id} #{pos}"}
            points.append(StoredPoint(id=pid(doc_id, pos), dense=(v / np.linalg.norm(v)).tolist(), sparse=sparse,
                                      payload=payload))  # fmt: skip
    # the odd one: unknown year, no label, and only the rare term (not the shared one)
    v = rng.standard_normal(DIM)
    points.append(
        StoredPoint(
            id=pid("docE", 0), dense=(v / np.linalg.norm(v)).tolist(),
            sparse=SparseVector(indices=[RARE], values=[0.5]),
            payload={"doc_id": "docE", "doc_language": "de", "country": "DE", "year": None, "doc_type": "report",
                     "publisher": "gematik", "file": "e.md", "labels": [], "position": 0, "text": "docE #0"},
        )
    )  # fmt: skip
    return points


POINTS = make_points()
N = len(POINTS)
BY_ID = {p.id: p for p in POINTS}
ODD = pid("docE", 0)


def oracle(payload: dict, f: SearchFilters | None) -> bool:
    """What a filter means, written independently of the engines' translation."""
    if f is None:
        return True
    for values, key in ((f.languages, "doc_language"), (f.countries, "country"), (f.doc_types, "doc_type"),
                        (f.publishers, "publisher"), (f.files, "file"), (f.doc_ids, "doc_id"),
                        (f.objectives, "labels")):  # fmt: skip
        if not values:
            continue
        have = payload.get(key)
        have = have if isinstance(have, list) else [have]
        if not set(have) & set(values):
            return False
    if f.year_from is not None or f.year_to is not None:
        year = payload.get("year")
        if year is None:
            return False
        if f.year_from is not None and year < f.year_from:
            return False
        if f.year_to is not None and year > f.year_to:
            return False
    return True


def expected_ids(f: SearchFilters | None) -> set[str]:
    return {p.id for p in POINTS if oracle(p.payload, f)}


def cosine_ranking(query: list[float], ids: set[str]) -> list[str]:
    q = np.asarray(query)
    return sorted(ids, key=lambda i: -float(np.asarray(BY_ID[i].dense) @ q))


FILTER_CASES = {
    "lang": SearchFilters(languages=["fr"]),
    "langs": SearchFilters(languages=["en", "no"]),
    "country": SearchFilters(countries=["FR"]),
    "type": SearchFilters(doc_types=["strategy"]),
    "publisher": SearchFilters(publishers=["WHO"]),
    "file": SearchFilters(files=["c.pdf"]),
    "doc": SearchFilters(doc_ids=["docA"]),
    "objective": SearchFilters(objectives=["EU.SP2"]),
    "objectives": SearchFilters(objectives=["GSDH.SO1", "SPI.WG3"]),
    "year-from": SearchFilters(year_from=2020),
    "year-to": SearchFilters(year_to=2020),
    "year-range": SearchFilters(year_from=2020, year_to=2022),
    "year-gap": SearchFilters(year_from=2021, year_to=2021),
    "combined": SearchFilters(languages=["en"], doc_types=["strategy"], year_from=2019, objectives=["GSDH.SO1"]),
    "combined-2": SearchFilters(countries=["FR", "NO"], year_to=2021, publishers=["ANS"], files=["b.pdf", "c.pdf"]),
    "nothing": SearchFilters(languages=["xx"]),
}


# --- fixtures ----------------------------------------------------------------------------------------------------
@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(engine: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(store_engine=engine, qdrant_url=None)


@pytest.fixture
def store(settings: Settings) -> Iterator[VectorStore]:
    """A filled store of one's own, for tests that write."""
    s = open_store(settings)
    s.ensure_collection(DIM)
    s.upsert(POINTS)
    yield s
    s.close()


@pytest.fixture(scope="module", params=ENGINES)
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, base_settings: Settings):
    """One filled store per engine shared by the tests that only read (creating one costs ~1-2 s)."""
    home = tmp_path_factory.mktemp(f"store-{request.param}")
    s = open_store(base_settings.model_copy(update={"home": home, "store_engine": request.param, "qdrant_url": None}))
    s.ensure_collection(DIM)
    s.upsert(POINTS)
    yield s
    s.close()


def test_engines_differ(settings: Settings, engine: str) -> None:
    s = open_store(settings)
    try:
        assert type(s).__name__ == {"qdrant-local": "QdrantStore", "qdrant-edge": "EdgeStore"}[engine]
    finally:
        s.close()


def test_oracle_cases_discriminate() -> None:
    """The filter cases are worth running: most keep some points but not all, and some keep none."""
    sizes = {name: len(expected_ids(f)) for name, f in FILTER_CASES.items()}
    assert sum(0 < n < N for n in sizes.values()) >= len(sizes) - 2
    assert sizes["nothing"] == 0 and sizes["year-gap"] == 0
    assert ODD not in expected_ids(SearchFilters(year_to=2100)), "an unknown year is outside every year range"


# --- an empty library ----------------------------------------------------------------------------------------------
def test_empty_store_answers_without_collection(settings: Settings) -> None:
    s = open_store(settings)
    try:
        assert s.count() == 0
        assert s.point_ids() == set()
        assert list(s.scroll()) == []
        assert s.query([1.0] + [0.0] * (DIM - 1), None, None, limit=5, candidates=5) == []
        assert s.facets(None) == {k: {} for k in FACET_KEYS}
        s.delete_doc("docA")
        s.delete_ids([pid("docA", 0)])
    finally:
        s.close()


# --- writing -------------------------------------------------------------------------------------------------------
def test_upsert_is_idempotent_and_replaces(store: VectorStore) -> None:
    assert store.count() == N
    store.ensure_collection(DIM)  # a second call keeps the data
    changed = POINTS[0].model_copy(update={"payload": {**POINTS[0].payload, "publisher": "EC-2", "extra": 1}})
    store.upsert([changed, *POINTS[1:]])
    assert store.count() == N
    assert store.point_ids() == set(BY_ID)
    stored = {p.id: p.payload for p in store.scroll()}
    assert stored[changed.id]["publisher"] == "EC-2" and stored[changed.id]["extra"] == 1
    store.upsert([POINTS[0]])  # upsert replaces the whole payload: the extra key is gone again
    stored = {p.id: p.payload for p in store.scroll()}
    assert "extra" not in stored[changed.id] and stored[changed.id]["publisher"] == "EC"


def test_delete_ids(store: VectorStore) -> None:
    gone = [pid("docA", 1), pid("docC", 4)]
    store.delete_ids(gone)
    store.delete_ids([])
    assert store.count() == N - 2
    assert store.point_ids() == set(BY_ID) - set(gone)
    assert not {h.id for h in store.query(BY_ID[gone[0]].dense, None, None, limit=N, candidates=N)} & set(gone)


def test_delete_doc(store: VectorStore) -> None:
    store.delete_doc("docB")
    assert store.point_ids("docB") == set()
    assert store.count() == N - PER_DOC
    assert store.point_ids("docA") == {pid("docA", i) for i in range(PER_DOC)}
    assert store.count(SearchFilters(doc_ids=["docB"])) == 0
    assert "b.pdf" not in store.facets(None, keys=("file",))["file"]


def test_point_ids(filled: VectorStore) -> None:
    assert filled.point_ids() == set(BY_ID)
    assert filled.point_ids("docC") == {pid("docC", i) for i in range(PER_DOC)}
    assert filled.point_ids("no-such-doc") == set()


def test_set_payload(store: VectorStore) -> None:
    ids = [pid("docA", 0), pid("docD", 0)]
    store.set_payload(ids, {"labels": ["WG.NEW"], "label_scores": {"WG.NEW": 0.9}})
    store.set_payload([], {"labels": ["ignored"]})
    stored = {p.id: p.payload for p in store.scroll()}
    for i in ids:
        assert stored[i]["labels"] == ["WG.NEW"] and stored[i]["label_scores"] == {"WG.NEW": 0.9}
        assert stored[i]["publisher"] == BY_ID[i].payload["publisher"], "other keys are kept"
        assert stored[i]["text"] == BY_ID[i].payload["text"]
    assert stored[pid("docA", 1)]["labels"] == LABELS[1], "other points are untouched"
    assert store.count(SearchFilters(objectives=["WG.NEW"])) == 2, "filters see the new payload"
    assert store.facets(None, keys=("labels",))["labels"]["WG.NEW"] == 2
    # the vectors survive a payload edit
    hit = store.query(BY_ID[ids[0]].dense, None, None, limit=1, candidates=1)[0]
    assert hit.id == ids[0]


def test_set_sparse_replaces_terms_and_keeps_the_rest(store: VectorStore) -> None:
    target, other = pid("docB", 2), pid("docB", 3)
    store.set_sparse({target: SparseVector(indices=[RARE], values=[0.5])})
    store.set_sparse({})
    found = store.query(None, SparseVector(indices=[RARE], values=[1.0]), None, limit=N, candidates=N)
    assert {h.id for h in found} == {ODD, target}, "the new term is searchable"
    old_term = store.query(None, SparseVector(indices=[202], values=[1.0]), None, limit=N, candidates=N)
    assert target not in {h.id for h in old_term} and other not in {h.id for h in old_term}
    assert pid("docA", 2) in {h.id for h in old_term}, "other points keep their terms"
    assert store.query(BY_ID[target].dense, None, None, limit=1, candidates=1)[0].id == target, "dense kept"
    assert {p.id: p.payload for p in store.scroll()}[target]["text"] == BY_ID[target].payload["text"]


# --- reading -------------------------------------------------------------------------------------------------------
def test_sparse_scores_of_chosen_points(filled: VectorStore) -> None:
    query = SparseVector(indices=[SHARED, RARE], values=[1.0, 1.0])
    chosen = [ODD, pid("docA", 0), pid("docC", 4)]
    scores = filled.sparse_scores(query, chosen)
    assert set(scores) == set(chosen), "only the chosen points, each scored"
    assert scores[ODD] > scores[pid("docA", 0)] > 0, "IDF applied: the rare term outweighs the shared one"
    ranked = {h.id: h.score for h in filled.query(None, query, None, limit=N, candidates=N)}
    assert all(abs(scores[i] - ranked[i]) < 1e-4 for i in chosen), "the same scores as a BM25 query"
    only_rare = filled.sparse_scores(SparseVector(indices=[RARE], values=[1.0]), chosen)
    assert set(only_rare) == {ODD}, "points sharing no term are left out"
    assert filled.sparse_scores(query, []) == {}


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_filters_mean_the_same_everywhere(filled: VectorStore, case: str) -> None:
    f = FILTER_CASES[case]
    want = expected_ids(f)
    assert filled.count(f) == len(want)
    assert {p.id for p in filled.scroll(f)} == want
    query = POINTS[3].dense
    dense = filled.query(query, None, f, limit=N, candidates=N)
    assert [h.id for h in dense] == cosine_ranking(query, want)
    sparse = filled.query(None, SparseVector(indices=[SHARED, RARE], values=[1.0, 1.0]), f, limit=N, candidates=N)
    assert {h.id for h in sparse} == want
    hybrid = filled.query(query, SparseVector(indices=[SHARED], values=[1.0]), f, limit=N, candidates=N)
    assert {h.id for h in hybrid} == want
    for h in dense + sparse + hybrid:
        assert oracle(h.payload, f)


def test_count_and_filters_combine(filled: VectorStore) -> None:
    assert filled.count() == N
    assert filled.count(SearchFilters()) == N
    en = filled.count(SearchFilters(languages=["en"]))
    en_strategy = filled.count(SearchFilters(languages=["en"], doc_types=["strategy"]))
    assert en == 2 * PER_DOC and en_strategy == PER_DOC  # AND across keys
    assert filled.count(SearchFilters(languages=["en", "fr"])) == 3 * PER_DOC  # OR within a key
    assert filled.count(SearchFilters(year_from=2018, year_to=2018)) == PER_DOC  # bounds are inclusive
    assert filled.count(SearchFilters(year_from=2024)) == PER_DOC
    assert filled.count(SearchFilters(year_to=2017)) == 0


def test_dense_query_ranks_by_cosine(filled: VectorStore) -> None:
    target = BY_ID[pid("docC", 2)]
    hits = filled.query(target.dense, None, None, limit=5, candidates=5)
    assert len(hits) == 5
    assert hits[0].id == target.id and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.id for h in hits] == cosine_ranking(target.dense, set(BY_ID))[:5]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].payload["doc_id"] == "docC" and hits[0].payload["text"] == "docC #2"
    assert np.allclose(hits[0].payload["_dense"], target.dense, atol=1e-5), "hits carry their dense vector"


def test_sparse_query_uses_idf(filled: VectorStore) -> None:
    only_rare = filled.query(None, SparseVector(indices=[RARE], values=[1.0]), None, limit=N, candidates=N)
    assert [h.id for h in only_rare] == [ODD], "only points sharing a term match"
    # every regular point has the shared term with the same weight as the odd point's rare term: only IDF
    # (rare term weighs more) puts the odd point first, strictly ahead
    both = filled.query(None, SparseVector(indices=[SHARED, RARE], values=[1.0, 1.0]), None, limit=N, candidates=N)
    assert len(both) == N and both[0].id == ODD and both[0].score > both[1].score
    # the doc term's weight grows with position: the ranking follows it
    doc_c = filled.query(None, SparseVector(indices=[102], values=[1.0]), None, limit=N, candidates=N)
    assert [h.id for h in doc_c] == [pid("docC", i) for i in reversed(range(PER_DOC))]
    assert filled.query(None, SparseVector(indices=[], values=[]), None, limit=N, candidates=N) == []


def test_hybrid_fuses_both_lists_with_rrf(filled: VectorStore) -> None:
    dense_q = BY_ID[pid("docA", 0)].dense
    sparse_q = SparseVector(indices=[102], values=[1.0])  # ranks docC 4, 3, 2, ...
    dense_top = [h.id for h in filled.query(dense_q, None, None, limit=3, candidates=3)]
    sparse_top = [h.id for h in filled.query(None, sparse_q, None, limit=3, candidates=3)]
    assert sparse_top == [pid("docC", 4), pid("docC", 3), pid("docC", 2)]
    # reciprocal rank fusion of the two candidate lists: score = sum over lists of 1 / (k + rank), rank from 0
    for k in (60, 2):
        want: dict[str, float] = {}
        for ranking in (dense_top, sparse_top):
            for rank, i in enumerate(ranking):
                want[i] = want.get(i, 0.0) + 1.0 / (k + rank)
        fused = filled.query(dense_q, sparse_q, None, limit=N, candidates=3, rrf_k=k)
        assert {h.id: h.score for h in fused} == pytest.approx(want, rel=1e-4)
        assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)
    # first in both lists: ranked first, strictly ahead, and hits carry their dense vectors
    odd = BY_ID[ODD]
    fused = filled.query(odd.dense, SparseVector(indices=[RARE], values=[1.0]), None, limit=5, candidates=5)
    assert len(fused) == 5 and fused[0].id == ODD and fused[0].score > fused[1].score
    assert np.allclose(fused[0].payload["_dense"], odd.dense, atol=1e-5)


def test_filters_apply_inside_each_prefetch(filled: VectorStore) -> None:
    """A filter is applied before the candidate cut: a narrow filter still fills both candidate lists."""
    f = SearchFilters(doc_ids=["docD"])
    far = BY_ID[pid("docA", 0)].dense  # its nearest points are not in docD
    sparse_q = SparseVector(indices=[103], values=[1.0])  # ranks docD 4, 3, 2, ...
    dense3 = [h.id for h in filled.query(far, None, f, limit=3, candidates=3)]
    sparse3 = [h.id for h in filled.query(None, sparse_q, f, limit=3, candidates=3)]
    assert dense3 == cosine_ranking(far, expected_ids(f))[:3]
    assert sparse3 == [pid("docD", 4), pid("docD", 3), pid("docD", 2)]
    assert set(dense3) - set(sparse3), "the case needs a dense candidate the sparse list lacks"
    hits = filled.query(far, sparse_q, f, limit=N, candidates=3)
    assert {h.id for h in hits} == set(dense3) | set(sparse3)


def test_facets(filled: VectorStore) -> None:
    def python_facets(f: SearchFilters | None) -> dict[str, dict]:
        out: dict[str, Counter] = {k: Counter() for k in FACET_KEYS}
        for p in POINTS:
            if oracle(p.payload, f):
                for k in FACET_KEYS:
                    v = p.payload.get(k)
                    for x in v if isinstance(v, list) else [v]:
                        if x is not None:
                            out[k][x] += 1
        return {k: dict(c) for k, c in out.items()}

    assert filled.facets(None) == python_facets(None)
    f = SearchFilters(languages=["en"], year_from=2019)
    assert filled.facets(f) == python_facets(f)
    assert filled.facets(f)["year"] == {2024: PER_DOC}, "years stay integers"
    assert filled.facets(None, keys=("labels", "file")) == {k: python_facets(None)[k] for k in ("labels", "file")}


def test_scroll_with_dense(filled: VectorStore) -> None:
    plain = list(filled.scroll())
    assert len(plain) == N and all("_dense" not in p.payload for p in plain)
    with_dense = {p.id: p for p in filled.scroll(SearchFilters(doc_ids=["docB"]), with_dense=True)}
    assert set(with_dense) == {pid("docB", i) for i in range(PER_DOC)}
    for i, p in with_dense.items():
        assert np.allclose(p.payload["_dense"], BY_ID[i].dense, atol=1e-5)
        assert p.payload["doc_id"] == "docB" and p.payload["labels"] == BY_ID[i].payload["labels"]


def test_scroll_pages_through_large_sets(settings: Settings) -> None:
    rng = np.random.default_rng(1)
    many = [
        StoredPoint(id=str(uuid.uuid5(NS, f"many:{i}")), dense=rng.standard_normal(DIM).tolist(),
                    sparse=SparseVector(indices=[SHARED], values=[1.0]), payload={"doc_id": f"m{i % 3}", "year": 2000})
        for i in range(600)
    ]  # fmt: skip
    s = open_store(settings)
    try:
        s.ensure_collection(DIM)
        s.upsert(many)
        ids = [p.id for p in s.scroll()]
        assert len(ids) == len(set(ids)) == 600
        assert len(s.point_ids("m1")) == len([p for p in many if p.payload["doc_id"] == "m1"])
    finally:
        s.close()


def with_sentences(points: list[StoredPoint], seed: int = 11) -> list[StoredPoint]:
    """The same points, each with three random sentence vectors (a multivector)."""
    rng = np.random.default_rng(seed)
    out = []
    for p in points:
        m = rng.standard_normal((3, DIM))
        out.append(p.model_copy(update={"sentences": (m / np.linalg.norm(m, axis=1, keepdims=True)).tolist()}))
    return out


def test_sentence_vectors_find_a_passage_by_its_best_sentence(store: VectorStore) -> None:
    """MaxSim: a query equal to one sentence of a passage finds that passage, whatever its passage vector."""
    points = with_sentences(POINTS)
    store.upsert(points)
    target = points[7]
    query = target.sentences[1]
    alone = store.query(query, None, None, limit=3, candidates=3, weights=(0.0, 0.0, 1.0))
    assert alone[0].id == target.id and alone[0].score == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(alone[0].payload["_sentences"], target.sentences, atol=1e-5), "hits carry their sentences"
    by_passage = [h.id for h in store.query(query, None, None, limit=3, candidates=3, weights=(1.0, 0.0, 0.0))]
    assert target.id not in by_passage[:1], "the passage vector alone does not rank it first (the test is fair)"
    fused = store.query(query, None, None, limit=N, candidates=N, weights=(1.0, 0.0, 1.0))
    assert target.id in [h.id for h in fused[:2]]
    f = SearchFilters(doc_ids=[next(p.payload["doc_id"] for p in points if p.id != target.id and
                                    p.payload["doc_id"] != target.payload["doc_id"])])  # fmt: skip
    filtered = store.query(query, None, f, limit=N, candidates=N, weights=(0.0, 0.0, 1.0))
    assert filtered and all(oracle(h.payload, f) for h in filtered), "filters apply to the sentence retriever"


def test_weights_steer_fusion(store: VectorStore) -> None:
    """A zero weight drops a retriever; a heavier one wins ties between lists."""
    dense_q = BY_ID[pid("docA", 0)].dense
    sparse_q = SparseVector(indices=[102], values=[1.0])  # ranks docC 4, 3, 2, ...
    only_dense = store.query(dense_q, sparse_q, None, limit=N, candidates=N, weights=(1.0, 0.0, 0.0))
    assert [h.id for h in only_dense] == cosine_ranking(dense_q, set(BY_ID))
    only_sparse = store.query(dense_q, sparse_q, None, limit=3, candidates=3, weights=(0.0, 1.0, 0.0))
    assert [h.id for h in only_sparse] == [pid("docC", 4), pid("docC", 3), pid("docC", 2)]
    dense_first = store.query(dense_q, sparse_q, None, limit=1, candidates=3, weights=(3.0, 1.0, 0.0))
    sparse_first = store.query(dense_q, sparse_q, None, limit=1, candidates=3, weights=(1.0, 3.0, 0.0))
    assert dense_first[0].id == pid("docA", 0) and sparse_first[0].id == pid("docC", 4)


# --- persistence and the one-holder rule ------------------------------------------------------------------------
def test_reopen_after_close_keeps_data(settings: Settings) -> None:
    s = open_store(settings)
    s.ensure_collection(DIM)
    s.upsert(POINTS)
    s.set_payload([pid("docB", 0)], {"labels": ["KEPT"]})
    s.delete_doc("docD")
    s.close()
    s = open_store(settings)
    try:
        assert s.count() == N - PER_DOC
        assert s.point_ids("docD") == set()
        assert s.count(SearchFilters(objectives=["KEPT"])) == 1
        target = BY_ID[pid("docC", 1)]
        assert s.query(target.dense, None, None, limit=1, candidates=1)[0].id == target.id
        s.ensure_collection(DIM)
        assert s.count() == N - PER_DOC
        s.upsert([BY_ID[pid("docD", 0)]])  # and it stays writable
        assert s.count() == N - PER_DOC + 1
    finally:
        s.close()


HOLDER = """
import sys
from index.store import IndexBusyError, open_store
from kb.settings import Settings
try:
    open_store(Settings(home=sys.argv[1], store_engine=sys.argv[2], qdrant_url=None)).close()
except IndexBusyError:
    sys.exit(3)
"""


def test_second_holder_is_refused(settings: Settings, engine: str) -> None:
    first = open_store(settings)
    first.ensure_collection(DIM)
    first.upsert(POINTS[:3])

    def other_process() -> int:
        return subprocess.run([sys.executable, "-c", HOLDER, str(settings.home), engine], cwd=REPO,
                              capture_output=True, text=True, timeout=120).returncode  # fmt: skip

    try:
        with pytest.raises(IndexBusyError):
            open_store(settings)  # a second holder in the same process
        assert other_process() == 3  # and in another process (the app holds it, the CLI asks)
    finally:
        first.close()
    assert other_process() == 0  # free again once the holder closes
    again = open_store(settings)
    try:
        assert again.count() == 3
    finally:
        again.close()


# --- switching engines -------------------------------------------------------------------------------------------
def test_edge_imports_an_existing_local_library(make_settings: Callable[..., Settings]) -> None:
    """Switching KB_STORE_ENGINE to qdrant-edge keeps a library: the registry says 'indexed', so must the index."""
    local = open_store(make_settings(store_engine="qdrant-local", qdrant_url=None))
    local.ensure_collection(DIM)
    local.upsert(POINTS)
    local.set_payload([pid("docB", 0)], {"labels": ["KEPT"]})
    local.close()
    settings = make_settings(store_engine="qdrant-edge", qdrant_url=None)
    edge = open_store(settings)
    try:
        assert type(edge).__name__ == "EdgeStore" and edge.count() == N
        assert edge.count(SearchFilters(objectives=["KEPT"])) == 1
        target = BY_ID[pid("docC", 1)]
        hit = edge.query(target.dense, None, None, limit=1, candidates=1)[0]
        assert hit.id == target.id
        assert {k: v for k, v in hit.payload.items() if not k.startswith("_")} == target.payload
        both = edge.query(None, SparseVector(indices=[SHARED, RARE], values=[1.0, 1.0]), None, limit=N, candidates=N)
        assert len(both) == N and both[0].id == ODD, "sparse vectors came along"
        edge.delete_doc("docA")
    finally:
        edge.close()
    edge = open_store(settings)  # imported once: later opens keep the edge index's own state
    try:
        assert edge.count() == N - PER_DOC
    finally:
        edge.close()


def test_edge_upgrades_a_shard_from_before_sentence_vectors(make_settings: Callable[..., Settings]) -> None:
    """An edge shard without the sentence multivector is moved to the current layout on open, losing nothing."""
    import qdrant_edge as qe

    from index.store.base import DENSE, SPARSE
    from index.store.edge import edge_path

    settings = make_settings(store_engine="qdrant-edge", qdrant_url=None)
    path = edge_path(settings)
    path.mkdir(parents=True)
    old = qe.EdgeShard.create(str(path), qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    ))  # fmt: skip
    old.update(qe.UpdateOperation.upsert_points([
        qe.Point(p.id, {DENSE: p.dense, SPARSE: qe.SparseVector(p.sparse.indices, p.sparse.values)}, p.payload)
        for p in POINTS
    ]))  # fmt: skip
    old.flush()
    old.close()
    store = open_store(settings)
    try:
        assert store.count() == N
        target = BY_ID[pid("docC", 1)]
        assert store.query(target.dense, None, None, limit=1, candidates=1)[0].id == target.id
        both = store.query(None, SparseVector(indices=[SHARED, RARE], values=[1.0, 1.0]), None, limit=N, candidates=N)
        assert both[0].id == ODD, "sparse vectors came along"
        store.upsert(with_sentences([target]))  # the new layout takes sentence vectors
        hit = store.query(with_sentences([target])[0].sentences[0], None, None, limit=1, candidates=1,
                          weights=(0.0, 0.0, 1.0))[0]  # fmt: skip
        assert hit.id == target.id
    finally:
        store.close()
    assert not path.with_name(path.name + ".legacy").exists()


# --- the edge engine end to end ----------------------------------------------------------------------------------
def test_edge_engine_ingests_and_searches_a_real_document(make_kb, tmp_path: Path) -> None:
    name = SMALL_DOCS["de"]
    copy_docs([name], tmp_path / "corpus")
    kb = make_kb(store_engine="qdrant-edge", qdrant_url=None)
    report = kb.ingest()
    assert report.totals()["failed"] == 0, report.as_json()
    chunks = report.files[0].chunks
    assert chunks and chunks > 0
    assert (kb.settings.home / "qdrant-edge").is_dir() and not kb.settings.qdrant_path.exists()
    assert kb.store.count() == chunks
    result = kb.search("Pseudonymisierung von Daten im Forschungsdatenzentrum", k=3)
    assert result.hits and result.hits[0].file == name and result.hits[0].page >= 1
    assert "seudonym" in result.hits[0].text
    # cross-lingual: an English question finds the German passage, and the filters work through the service
    assert kb.search("pseudonymisation of health data for research", k=3).hits[0].file == name
    assert kb.search("Pseudonymisierung", SearchFilters(languages=["fr"])).hits == []
    assert kb.search("Pseudonymisierung", SearchFilters(languages=["de"], files=[name])).hits
    # unchanged re-run embeds nothing; the index reopens from disk in a new process-like instance
    assert kb.ingest().totals().get("unchanged", 0) == 1
    kb.close()
    again = make_kb(store_engine="qdrant-edge", qdrant_url=None)
    assert again.store.count() == chunks
    assert again.search("Pseudonymisierung", k=1).hits[0].file == name
