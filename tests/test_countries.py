"""Countries discussed: recognition in the Region's languages, the ``about`` tag and filter, comparing countries on
one question, and saved searches that count what is new after an ingest."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from alignment.countries import DATA_FILE, CountryRecognizer
from eval.countries import TUNING_FILE, evaluate_countries
from kb.export import comparison_csv, comparison_markdown
from kb.records import SearchFilters
from kb.service import KnowledgeBase
from tests.conftest import SMALL_DOCS, copy_docs

ESTONIA = (
    "# E-prescriptions in Estonia\n\nIn Estonia, almost all prescriptions have been issued electronically since "
    "2010: patients collect their medicines at any pharmacy with their national ID card, and the Estonian "
    "e-prescription centre is linked to the national health information system.\n"
)
FRANCE = (
    "# La téléconsultation en France\n\nEn France, la téléconsultation est remboursée par l'Assurance maladie depuis "
    "septembre 2018 lorsqu'elle est réalisée par vidéotransmission avec un médecin qui connaît le patient.\n"
)
NORWAY = (
    "# Helsenorge\n\nNorges innbyggere bruker Helsenorge til å fornye resepter, bestille time hos fastlegen og lese "
    "journalen sin; norske kommuner tilbyr i tillegg videokonsultasjon med fastlegen.\n"
)
FINLAND = (
    "# Electronic prescriptions in Finland\n\nIn Finland, electronic prescriptions became mandatory in 2017; every "
    "pharmacy in the country dispenses medicines from the national prescription centre.\n"
)
CYCLING = (
    "# Cycling in Denmark\n\nDenmark has built protected cycle lanes along most urban roads, and Danish cities count "
    "bicycles at their busiest junctions every morning.\n"
)
PRESCRIPTIONS = "How are electronic prescriptions issued and dispensed?"


@pytest.fixture(scope="module")
def recognizer() -> CountryRecognizer:
    return CountryRecognizer()


# --- recognition -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Estonia has a national e-health record.", ["EE"]),
        ("In Estland gibt es seit 2008 eine elektronische Patientenakte.", ["EE"]),
        ("Le système de santé de l'Estonie est entièrement numérique.", ["EE"]),
        ("Эстония внедрила электронные рецепты.", ["EE"]),
        ("Опыт Эстонии показывает", ["EE"]),  # an inflected Russian form
        ("Eesti e-tervise süsteem", ["EE"]),
        ("the Estonian e-health system", ["EE"]),
        ("la doctrine française du numérique en santé", ["FR"]),
        ("norske kommuner og Norges helsevesen", ["NO"]),
        ("Deutschlands Digitalisierungsstrategie", ["DE"]),
        ("Pilots in Bosnia and Herzegovina and the Republic of Moldova", ["BA", "MD"]),
        ("Member States such as FR, CZ and EE reported", ["CZ", "EE", "FR"]),
        ("Helsenorge is the national portal", ["NO"]),
        ("Türkiye (formerly Turkey) and the UK", ["GB", "TR"]),
        ("Telemedicine is widely used in Danish and Swedish hospitals", ["DK", "SE"]),
        ("Georgia introduced an e-health strategy", ["GE"]),
        ("в Дании и в Чехии; США и РФ", ["CZ", "DK", "RU", "US"]),
        ("эстонская система", ["EE"]),
        ("in den Niederlanden und im Vereinigten Königreich", ["GB", "NL"]),
        ("gli ospedali tedeschi", ["DE"]),
    ],
)
def test_country_names_adjectives_and_codes_in_the_regions_languages(
    recognizer: CountryRecognizer, text: str, expected: list[str]
) -> None:
    assert recognizer.countries(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The guide is available in French and German.",
        "Skjemaet finnes på norsk og engelsk.",
        "Le document est disponible en français.",
        "la versión en idioma español",
        "World Health Organization, Geneva, Switzerland",
        "a budget of US$ 55 million",
        "partners in Latin America and Europe",
        "the European Union and the WHO Regional Office for Europe",
        "CONTACT US FOR MORE INFORMATION",
        "Available in English, French, German and Russian.",
        "English, French and Russian versions",
        "auf Englisch und Französisch; på engelsk og fransk; la version française",
        "Pan American Health Organization and Latin American countries",
        "Dominique Martin met Франц Кафка in Rhode Island",
        "5 GB of storage at Example GmbH & Co. KG",
        "The Hague, Netherlands: Example Press",
    ],
)
def test_language_names_seats_regions_and_words_are_not_countries(recognizer: CountryRecognizer, text: str) -> None:
    assert recognizer.countries(text) == []


def test_triggers_show_how_a_passage_names_each_country(recognizer: CountryRecognizer) -> None:
    assert recognizer.triggers("En Estonie comme au Danemark, l'Estonie…") == {"EE": "Estonie", "DK": "Danemark"}


def test_country_codes_are_read_as_people_type_them() -> None:
    assert SearchFilters(about=["uk", " ee", "EL", "EE"]).about == ["GB", "EE", "GR"]


def test_a_bare_NO_in_the_country_data_is_refused(tmp_path: Path) -> None:
    edited = tmp_path / "countries.yaml"
    edited.write_text(DATA_FILE.read_text(encoding="utf-8").replace('"NO", PL', "NO, PL"), encoding="utf-8")
    with pytest.raises(ValueError, match="quote every country code"):
        CountryRecognizer(edited)


def test_recognition_on_real_labelled_passages_in_five_languages(recognizer: CountryRecognizer) -> None:
    rows = [json.loads(line) for line in TUNING_FILE.read_text(encoding="utf-8").splitlines()]
    for language in ("en", "fr", "no", "es", "it"):
        with_country = [r for r in rows if r["language"] == language and r["countries"]]
        exact = [r for r in with_country if recognizer.countries(r["text"]) == r["countries"]]
        assert exact, f"no {language} passage recognised exactly"
        found = sum(len(set(recognizer.countries(r["text"])) & set(r["countries"])) for r in with_country)
        assert found / sum(len(r["countries"]) for r in with_country) >= 0.8, language


def test_eval_countries_scores_the_labelled_passages(recognizer: CountryRecognizer) -> None:
    result = evaluate_countries(recognizer, TUNING_FILE)
    overall = result.scores[0]
    assert overall.group == "all" and overall.passages >= 100 and overall.gold_mentions > 100
    assert 0.5 < overall.precision < 1.0 and 0.5 < overall.recall <= 1.0  # real errors exist: the metric sees them
    assert {s.group for s in result.scores} >= {"en", "fr", "no", "es", "it", "de"}
    assert all(m.extra or m.missed for m in result.misses)


# --- the about tag, the filter, compare and saved searches on a real library ---------------------------------------
@pytest.fixture(scope="module")
def country_library(tmp_path_factory: pytest.TempPathFactory, base_settings, embedder) -> KnowledgeBase:
    from kb.settings import Settings

    root = tmp_path_factory.mktemp("country-library")
    corpus = root / "corpus"
    copy_docs([SMALL_DOCS["de"]], corpus)
    for name, text in (("en_estonia.md", ESTONIA), ("fr_france.md", FRANCE), ("no_helsenorge.md", NORWAY)):
        (corpus / name).write_text(text, encoding="utf-8")
    values = base_settings.model_dump() | {"home": root / "kbhome", "corpus_dir": corpus,
                                           "metadata_csv": root / "metadata.csv"}  # fmt: skip
    kb = KnowledgeBase(Settings(**values))
    kb.__dict__["embedder"] = embedder
    assert kb.ingest().totals()["failed"] == 0
    yield kb
    kb.close()


def test_passages_carry_the_countries_they_discuss_and_the_about_filter_keeps_them(
    country_library: KnowledgeBase,
) -> None:
    about = {p.payload["file"]: p.payload["about"] for p in country_library.store.scroll()}
    assert about["en_estonia.md"] == ["EE"] and about["fr_france.md"] == ["FR"]
    assert about["no_helsenorge.md"] == ["NO"]
    result = country_library.search("national digital health services", SearchFilters(about=["NO"]), k=5)
    assert result.hits and {h.file for h in result.hits} == {"no_helsenorge.md"}
    assert all(h.about == ["NO"] for h in result.hits)
    assert result.facets["about"] == {"NO": 1}
    assert country_library.countries_in_library() == {"EE": 1, "FR": 1, "NO": 1}
    cov = country_library.coverage(by="about")
    assert set(cov.columns) == {"EE", "FR", "NO"}


def test_compare_quotes_each_country_or_says_it_has_no_evidence(country_library: KnowledgeBase) -> None:
    comparison = country_library.compare(PRESCRIPTIONS, ["EE", "FR", "DE"])
    rows = {r.country: r for r in comparison.rows}
    assert list(rows) == ["EE", "FR", "DE"]
    estonia = rows["EE"]
    assert estonia.found and estonia.region_member and estonia.name == "Estonia"
    assert estonia.citations[0].file == "en_estonia.md" and estonia.citations[0].page == 1
    assert "Estonia" in estonia.citations[0].quote and "Estonia" in estonia.mentions
    assert not rows["FR"].found and rows["FR"].passages == 1  # discussed, but on teleconsultation
    assert "none answers" in rows["FR"].note
    assert not rows["DE"].found and rows["DE"].passages == 0 and "No passage" in rows["DE"].note

    lines = list(csv.DictReader(io.StringIO(comparison_csv(comparison))))
    assert list(dict.fromkeys(row["country"] for row in lines)) == ["EE", "FR", "DE"]
    assert {row["country"]: row["evidence"] for row in lines}["DE"] == "no"
    brief = comparison_markdown(comparison)
    assert "## Estonia (EE)" in brief and "_No evidence in the library._" in brief and "## References" in brief

    everyone = country_library.compare(PRESCRIPTIONS)  # no countries chosen: those the library discusses
    assert {r.country for r in everyone.rows} == {"EE", "FR", "NO"}
    country_library.settings.compare_max_countries = 2
    try:
        assert len(country_library.compare(PRESCRIPTIONS).rows) == 2
        assert len(country_library.compare(PRESCRIPTIONS, every_country=True).rows) == 3
    finally:
        country_library.settings.compare_max_countries = 12


def test_cli_compare_writes_json_csv_and_markdown(country_library: KnowledgeBase, monkeypatch, tmp_path: Path) -> None:
    from kb import cli
    from kb.settings import get_settings

    country_library.close()  # the CLI opens the same embedded index itself
    for name in ("searcher", "answerer", "comparer"):
        country_library.__dict__.pop(name, None)
    monkeypatch.setenv("KB_HOME", str(country_library.settings.home))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli.app,
            ["compare", PRESCRIPTIONS, "--country", "ee", "--country", "PL", "--json",
             "--csv", str(tmp_path / "c.csv"), "--markdown", str(tmp_path / "c.md")],
        )  # fmt: skip
        about = CliRunner().invoke(cli.app, ["search", "pharmacy", "--about", "EE", "--json", "-k", "3"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["country"] for r in data["rows"]] == ["EE", "PL"]
    assert data["rows"][0]["found"] and not data["rows"][1]["found"]
    assert "Poland (PL)" in (tmp_path / "c.md").read_text(encoding="utf-8")
    assert "no evidence in the library" in (tmp_path / "c.csv").read_text(encoding="utf-8")
    assert about.exit_code == 0, about.output
    assert {h["file"] for h in json.loads(about.stdout)["hits"]} == {"en_estonia.md"}


def test_saved_search_counts_new_passages_after_an_ingest(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path]
) -> None:
    write_md("en_estonia.md", ESTONIA)
    kb = make_kb()
    kb.ingest()
    kb.save_search("prescriptions", PRESCRIPTIONS)
    kb.save_search("nordic", PRESCRIPTIONS, kind="compare", countries=["FI", "DK"])
    assert [s.new_passages for s in kb.saved_searches()] == [0, 0]

    write_md("en_finland.md", FINLAND)
    write_md("en_cycling.md", CYCLING)  # new, but about something else: not news for either search
    kb.ingest()
    listed = {s.name: s for s in kb.saved_searches()}
    assert listed["prescriptions"].new_passages == 1 and listed["prescriptions"].new_documents == [
        "Electronic prescriptions in Finland"
    ]
    assert listed["nordic"].new_passages == 1  # Finland is one of its countries; Denmark's passage is off-topic
    assert [h.file for h in kb.new_passages("prescriptions")] == ["en_finland.md"]

    kb.mark_seen("prescriptions")
    listed = {s.name: s for s in kb.saved_searches()}
    assert listed["prescriptions"].new_passages == 0 and listed["nordic"].new_passages == 1
    assert kb.delete_saved_search("nordic") and [s.name for s in kb.saved_searches()] == ["prescriptions"]
    with pytest.raises(ValueError):
        kb.save_search(" ", PRESCRIPTIONS)


def test_country_data_change_retags_without_reembedding(
    make_kb: Callable[..., KnowledgeBase], write_md: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write_md("en_estonia.md", ESTONIA)
    write_md("fr_france.md", FRANCE)
    kb = make_kb()
    kb.ingest()
    before = {p.id: p.payload for p in kb.store.scroll(with_dense=True)}
    kb.close()

    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    data["version"] += 1
    data["not_countries"].append("EE")  # staff decide Estonia is not to be tagged (any edit re-tags)
    data["adjectives"].pop("EE")
    data["aliases"].setdefault("FR", []).append("Hexagone")
    edited = tmp_path / "countries.yaml"
    edited.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    kb = make_kb(countries_file=edited)
    embedded: list[str] = []
    original = kb.embedder.encode_passages_with_spans

    def counting(texts: list[str], spans):
        embedded.extend(texts)
        return original(texts, spans)

    kb.embedder.encode_passages_with_spans = counting  # type: ignore[method-assign]
    try:
        report = kb.ingest()
    finally:
        kb.embedder.encode_passages_with_spans = original  # type: ignore[method-assign]
    assert {f.status.value for f in report.files} == {"unchanged"} and not embedded
    after = {p.id: p.payload for p in kb.store.scroll(with_dense=True)}
    assert all(np.allclose(after[i]["_dense"], before[i]["_dense"], atol=1e-6) for i in after)
    assert {pl["file"]: pl["about"] for pl in after.values()} == {"en_estonia.md": [], "fr_france.md": ["FR"]}
