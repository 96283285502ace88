"""Cited search on real documents: fusion, every filter alone and combined, cross-lingual retrieval, facets,
the page-of-best-sentence rule, duplicate collapsing and the `kb search --json` contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from index.search import is_keyword_query
from kb.records import SearchFilters
from kb.service import KnowledgeBase
from tests.conftest import SMALL_DOCS

FACTSHEET, RPPS, DNMA, GEMATIK, TELEMED = (SMALL_DOCS[k] for k in ("en", "fr", "es", "de", "it"))
EC = "European Commission"


def files(kb: KnowledgeBase, query: str, **kwargs) -> list[str]:
    return [h.file for h in kb.search(query, **kwargs).hits]


def test_keywords_and_paraphrases_both_found_by_fusion(small_library: KnowledgeBase) -> None:
    # An acronym: BM25 is exact on it; fusion keeps it first.
    assert files(small_library, "RPPS", mode="sparse")[0] == RPPS
    assert files(small_library, "RPPS")[0] == RPPS
    # A paraphrase sharing no word with the Spanish text: dense finds it; fusion keeps it.
    paraphrase = "national catalogue of approved medicines and their identifiers in Uruguay"
    assert files(small_library, paraphrase, mode="dense")[0] == DNMA
    assert files(small_library, paraphrase)[0] == DNMA
    # Fused candidates are the union of both retrievers' lists, ranked by RRF inside Qdrant.
    sparse = {h.chunk_id for h in small_library.search("ransomware incidents", mode="sparse", k=5).hits}
    dense = {h.chunk_id for h in small_library.search("ransomware incidents", mode="dense", k=5).hits}
    fused = {h.chunk_id for h in small_library.search("ransomware incidents", k=20, rerank=False).hits}
    assert sparse <= fused and dense <= fused


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Jaki odsetek incydentów w sektorze zdrowia stanowiło oprogramowanie ransomware?", FACTSHEET),  # pl → en
        ("Quelles sont les quatre priorités du plan d'action sur la cybersécurité des hôpitaux ?", FACTSHEET),
        ("Wie werden Daten für das Forschungsdatenzentrum pseudonymisiert?", GEMATIK),  # de → de
        ("How are patient identifiers pseudonymised before research use of electronic records?", GEMATIK),  # en → de
        ("diccionario nacional de medicamentos", DNMA),
    ],
)
def test_cross_lingual_questions_find_evidence_in_other_languages(
    small_library: KnowledgeBase, query: str, expected: str
) -> None:
    assert expected in files(small_library, query)[:3]


def test_each_filter_alone_and_combined_applies_inside_the_query(small_library: KnowledgeBase) -> None:
    query = "digital health data"
    cases = {
        "languages": (SearchFilters(languages=["de"]), lambda h: h.file == GEMATIK),
        "countries": (SearchFilters(countries=["IT"]), lambda h: h.country == "IT"),
        "year_from": (SearchFilters(year_from=2025), lambda h: h.year >= 2025),
        "year_to": (SearchFilters(year_to=2023), lambda h: h.year <= 2023),
        "doc_types": (SearchFilters(doc_types=["specification"]), lambda h: h.doc_type == "specification"),
        "publishers": (SearchFilters(publishers=[EC]), lambda h: h.publisher == EC),
        "files": (SearchFilters(files=[RPPS]), lambda h: h.file == RPPS),
        "combined": (
            SearchFilters(doc_types=["specification"], year_from=2023, countries=["UY", "IT"]),
            lambda h: h.file == DNMA,
        ),
    }
    for name, (flt, ok) in cases.items():
        result = small_library.search(query, flt, k=60)  # every candidate, not just a first page
        assert result.hits, name
        assert all(ok(h) for h in result.hits), name
        assert sum(result.facets["country"].values()) == len({h.doc_id for h in result.hits}), name
    assert not small_library.search(query, SearchFilters(countries=["FR"], year_from=2025)).hits


def test_facets_count_documents_among_the_candidates(small_library: KnowledgeBase) -> None:
    facets = small_library.search("santé numérique données", k=5).facets
    assert set(facets) >= {"language", "country", "doc_type", "publisher", "year"}
    assert sum(facets["country"].values()) <= len(SMALL_DOCS)
    assert facets["country"].get("FR") == 1


def test_hit_page_is_the_page_of_the_best_sentence(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path]
) -> None:
    pages = [
        "Chapter one describes the governance of the national eHealth agency and its board.",
        "Chapter two covers procurement rules for regional hospital information systems.",
        "Chapter three: the vaccination registry sends SMS reminders to parents when a child is due.",
    ]
    write_md("strategy.md", "".join(f"<!-- PAGE {i} -->\n{text}\n\n" for i, text in enumerate(pages, 1)))
    kb = make_kb()
    kb.ingest()
    [hit] = kb.search("SMS reminders for childhood vaccination", k=1).hits
    assert hit.pages == (1, 3)  # one chunk spans the three short pages
    assert hit.page == 3
    marked = hit.snippet.split("**")[1::2]
    assert marked == ["Chapter three: the vaccination registry sends SMS reminders to parents when a child is due."]


def test_near_duplicate_passages_collapse_to_the_best_copy(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path]
) -> None:
    shared = (
        "The regional telemonitoring programme enrolled 4,200 patients with heart failure in 2023, and "
        "nurses reviewed their daily readings through the shared care record before adjusting treatment."
    )
    write_md("report-a.md", f"# Annual report\n\n{shared}\n\nOther findings concern dental care waiting lists.\n")
    write_md("report-b.md", f"# Press summary\n\n{shared}\n\nThe minister opened a new hospital wing in May.\n")
    kb = make_kb()
    kb.ingest()
    raw = kb.searcher.candidates(kb.searcher.prepare("telemonitoring heart failure patients"), None, "hybrid", 10)
    assert len({p.payload["file"] for p in raw}) == 2  # both copies were retrieved...
    hits = kb.search("telemonitoring heart failure patients", k=10).hits
    assert sum("4,200 patients" in h.text for h in hits) == 1  # ...and only the best one is shown


def test_sentence_vectors_come_from_the_index_not_from_query_time_encoding(
    small_library: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sentences are embedded at ingest (late chunking) and stored; a search embeds only the query."""
    searcher = small_library.searcher
    points = searcher.candidates(searcher.prepare("ransomware"), None, "hybrid", 5)
    for p in points:
        spans, vectors = p.payload["sentence_spans"], np.asarray(p.payload["_sentences"])
        assert len(spans) == len(vectors) > 0 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
        assert all(0 <= a < b <= len(p.payload["text"]) for a, b in spans)
    searcher.sentences._cache.clear()

    def refuse(*_args, **_kwargs):
        raise AssertionError("a search encoded passages at query time")

    monkeypatch.setattr(small_library.embedder, "encode_passages", refuse)
    question = "Jaki odsetek incydentów w sektorze zdrowia stanowiło oprogramowanie ransomware?"  # pl -> en
    hits = small_library.search(question, k=5).hits
    assert hits[0].file == FACTSHEET and "**" in hits[0].snippet  # best sentence found and marked, by meaning
    assert FACTSHEET in files(small_library, question, mode="sentences")[:3]  # the MaxSim retriever alone


def test_identifiers_are_matched_whole() -> None:
    """ "DHI 1.4.1" must prefer the passage with that code over one with the same digits elsewhere."""
    from index.sparse import SparseEncoder

    enc = SparseEncoder()
    exact = enc.encode_document("Intervention DHI 1.4.1 targets clients.", "en")
    scattered = enc.encode_document("Intervention DHI 1.4.2 and 4.1.1 target clients.", "en")
    query = enc.encode_query("DHI 1.4.1", "en")

    def score(doc) -> float:
        weights = dict(zip(doc.indices, doc.values, strict=True))
        return sum(weights.get(i, 0.0) for i in query.indices)

    assert score(exact) > score(scattered)
    assert "#myhealth@eu" in enc.terms("Services of MyHealth@EU.", "en")
    assert "#dm+d" in enc.terms("el modelo dm+d del Reino Unido", "es")


def test_a_word_meets_its_inflections() -> None:
    """A query word that is its own stem ("record", "pasient") still meets its inflections ("records", "pasienter")."""
    from index.sparse import SparseEncoder

    enc = SparseEncoder()
    for query, text, lang in (("record", "Patients read their records online.", "en"),
                              ("pasient", "Tjenester til pasienter i kommunen.", "no"),
                              ("patient", "Les patients et leurs soignants.", "fr")):  # fmt: skip
        shared_terms = set(enc.encode_query(query, lang).indices) & set(enc.encode_document(text, lang).indices)
        assert shared_terms, (query, text)


def test_keyword_query_puts_the_rare_identifier_first(small_library: KnowledgeBase) -> None:
    """Two words, one a rare code: BM25's IDF decides, though the embeddings prefer the document's title page."""
    hits = small_library.search("DNMA dm+d", k=5).hits
    assert hits[0].file == DNMA and hits[0].page in (5, 14)  # the two pages that name dm+d
    assert {h.page for h in hits[:2]} == {5, 14}


def test_candidates_the_fusion_ties_get_one_rank_whatever_order_they_come_in(small_library: KnowledgeBase) -> None:
    """Qdrant returns candidates with equal fused scores in an order that changes between processes; the
    re-scoring must not turn that order into a different ranking."""
    s = small_library.searcher
    q = s.prepare("Which standard does the telemedicine platform use for clinical documents?")
    points = s.candidates(q, None, "hybrid", limit=20)
    assert len(points) >= 4
    for p in points[2:4]:
        p.score = points[2].score  # the third and fourth candidates tie
    swapped = [p.model_copy() for p in points]
    swapped[2], swapped[3] = swapped[3], swapped[2]
    first, second = s.rerank(q, [p.model_copy() for p in points]), s.rerank(q, swapped)
    assert [(p.id, round(p.score, 9)) for p in first] == [(p.id, round(p.score, 9)) for p in second]


def test_keyword_queries_lean_on_words(small_library: KnowledgeBase) -> None:
    s = small_library.searcher
    keyword = s.weights(s.prepare("RPPS infirmiers"), "hybrid")
    question = s.weights(s.prepare("Combien d'infirmiers sont enregistrés dans le RPPS ?"), "hybrid")
    assert keyword[1] > question[1] and keyword[0] == question[0]
    assert s.weights(s.prepare("RPPS"), "dense") == (1.0, 0.0, 0.0)
    # a question typed without "?" stays a question; a long search-box phrase of names stays keyword-style
    assert not is_keyword_query("combien d'infirmiers sont enregistrés dans le RPPS", 12)
    assert not is_keyword_query("Wie viele Ärzte sind im RPPS registriert", 12)
    assert is_keyword_query("DNMA Diccionario Nacional de Medicamentos y Afines modelo de referencia dm+d", 12)


def test_cli_search_json_contract_and_queries_file(small_library: KnowledgeBase, monkeypatch, tmp_path: Path) -> None:
    from kb import cli
    from kb.settings import get_settings

    small_library.close()  # the CLI opens the same embedded index itself
    for name in ("searcher", "answerer"):
        small_library.__dict__.pop(name, None)
    monkeypatch.setenv("KB_HOME", str(small_library.settings.home))
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"id": "q1", "question": "ransomware"}) + "\n", encoding="utf-8")
    get_settings.cache_clear()
    try:
        one = CliRunner().invoke(cli.app, ["search", "pseudonymisation", "-k", "3", "--lang", "de", "--json"])
        many = CliRunner().invoke(cli.app, ["search", "--queries-file", str(queries), "--json", "-k", "2"])
    finally:
        get_settings.cache_clear()
    assert one.exit_code == 0, one.output
    data = json.loads(one.stdout)
    assert data["query"] == "pseudonymisation" and set(data) >= {"query", "hits", "facets"}
    hit = data["hits"][0]
    assert {"doc_id", "file", "title", "page", "pages", "score", "language", "text", "snippet"} <= set(hit)
    assert hit["file"] == GEMATIK and len(hit["pages"]) == 2
    [line] = many.stdout.splitlines()
    result = json.loads(line)
    assert result["id"] == "q1" and result["hits"][0]["file"] == FACTSHEET
