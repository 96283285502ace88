"""The Streamlit app's pages driven through AppTest against a small real library (real model, real embedded
Qdrant), plus the upload, export, watcher and library-management code they rely on."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ingest.metadata import build_metadata, read_table
from kb.export import answer_markdown, bibtex, cited_documents, hits_csv, ris
from kb.records import Answer, Citation, Document, DocumentMeta, SearchFilters, TagVerdict
from kb.service import KnowledgeBase
from kb.settings import Settings
from kb.ui import common
from kb.ui.viewer import bold_pieces, locate, quote_pieces
from kb.uploads import check_password, safe_name, save_upload
from kb.watcher import Watcher
from tests.app_support import build_library
from tests.conftest import SHARED_CORPUS, SMALL_DOCS

APP = Path(__file__).resolve().parent.parent / "app.py"
FACTSHEET, GEMATIK = SMALL_DOCS["en"], SMALL_DOCS["de"]
NO_EVIDENCE = "How many goals were scored in the 1998 football World Cup final?"
NOTE = (
    "# Telemedisin i kommunene\n\nKommunene skal tilby videokonsultasjon med fastlegen til alle innbyggere innen "
    "2027. Helsedirektoratet følger opp innføringen av digital hjemmeoppfølging og avstandsoppfølging av "
    "kronisk syke pasienter, og rapporterer årlig om erfaringene fra pilotkommunene.\n"
)


@pytest.fixture(scope="module")
def app_kb(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings, embedder) -> Iterator[KnowledgeBase]:
    """A two-document library (English PDF, German Markdown) that the app's cached KnowledgeBase is made of."""
    kb = build_library(
        tmp_path_factory.mktemp("app-library"), [FACTSHEET, GEMATIK], base_settings, embedder,
        watch_interval_s=0, editor_password=None, upload_max_mb=1,
    )  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.setattr(common, "open_kb", lambda: kb)
    common.get_kb.clear()
    common.get_watcher.clear()
    yield kb
    common.get_kb.clear()
    common.get_watcher.clear()
    mp.undo()
    kb.close()


def app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params.update(query or {})
    return at


def texts(at: AppTest) -> str:
    """Everything the page wrote as Markdown, captions and alerts, in one string."""
    parts = [m.value for m in (*at.title, *at.header, *at.subheader, *at.markdown, *at.caption)]
    parts += [e.value for e in (*at.warning, *at.info, *at.error, *at.success)]
    return "\n".join(parts)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


# --- search --------------------------------------------------------------------------------------------------------
def test_search_page_filters_facets_cards_and_a_link_that_reproduces_it(app_kb: KnowledgeBase) -> None:
    at = ok(app({"q": "Pseudonymisierung der Versichertennummer"}).run())
    assert at.text_input(key="search:text").value == "Pseudonymisierung der Versichertennummer"
    page = texts(at)
    assert "1. Pseudonymisierung von FHIR-Ressourcen" in page and ":blue-badge[DE]" in page
    assert "**" in next(m.value for m in at.markdown if "Versichertennummer" in m.value or "KVNR" in m.value)
    assert any(b.label.startswith("Open p. ") for b in at.button)
    assert at.multiselect(key="search:languages").options == ["de · German", "en · English"]
    assert "Counts: documents among this query's best passages." in texts(at)
    assert any(c.value.startswith(("de **", "en **")) for c in at.sidebar.caption)  # facet counts per value

    at.multiselect(key="search:languages").set_value(["en"]).run()
    ok(at)
    cards = [m.value for m in at.markdown if m.value.startswith("**") and ". " in m.value[:6]]
    assert cards and all("Cybersecurity" in c for c in cards)
    assert at.query_params["q"] == "Pseudonymisierung der Versichertennummer" and at.query_params["lang"] == "en"

    again = ok(app({"q": "Pseudonymisierung der Versichertennummer", "lang": "en"}).run())  # the shared link
    assert at.multiselect(key="search:languages").value == ["en"] == again.multiselect(key="search:languages").value
    assert [m.value for m in again.markdown if m.value.startswith("**1.")] == [c for c in cards if c.startswith("**1.")]

    objective = again.multiselect(key="search:objectives")
    assert "GSDH.SO1 Global collaboration and knowledge transfer" in objective.options  # every framework label
    again.multiselect(key="search:objectives").set_value(["GSDH.SO1"]).run()
    assert "GSDH.SO1" in str(again.query_params.get("objective"))


def test_opening_a_result_shows_the_pdf_page_with_the_passage_outlined(app_kb: KnowledgeBase) -> None:
    at = ok(app({"q": "ENISA European Cybersecurity Support Centre"}).run())
    first = next(b for b in at.button if b.label.startswith("Open p. "))
    assert first.label == "Open p. 2"
    first.click().run()
    ok(at)
    page = texts(at)
    assert "page 2 of 2 · passage outlined" in page
    assert "en\\_EC\\_Factsheet" in page  # the document's source line in the drawer

    # a Markdown document has no page image: its passage is shown as text
    md = ok(app({"q": "Pseudonymisierung FHIR Forschungsdatenzentrum", "lang": "de"}).run())
    next(b for b in md.button if b.label.startswith("Open p. ")).click().run()
    assert "is not a PDF: the passage is shown as text" in texts(ok(md))


def test_search_without_hits_and_with_an_empty_box(app_kb: KnowledgeBase) -> None:
    at = ok(app().run())
    assert "2 documents" in texts(at)
    at.text_input(key="search:text").set_value("zzqxj vvbnm").run()
    assert "No passages found" in texts(ok(at)) or at.markdown


# --- ask ------------------------------------------------------------------------------------------------------------
def test_ask_answers_with_numbered_citations_that_open_the_cited_page(app_kb: KnowledgeBase) -> None:
    at = ok(app().run())
    at.switch_page("kb/ui/ask_page.py").run()
    at.text_input(key="ask:text").set_value("Which EU agency will support hospitals with cybersecurity?").run()
    ok(at)
    page = texts(at)
    assert "[1]" in page and "Mode: evidence" in page
    cite = next(b for b in at.button if b.label.startswith("Open [1] p. "))
    cite.click().run()
    ok(at)
    assert "passage outlined" in texts(at) or "not located" in texts(at)
    assert at.query_params["q"] in ("Which EU agency will support hospitals with cybersecurity?",
                                    ["Which EU agency will support hospitals with cybersecurity?"])  # fmt: skip


def test_ask_without_evidence_says_so_shows_what_was_searched_and_the_closest_passages(app_kb: KnowledgeBase) -> None:
    at = ok(app({"q": NO_EVIDENCE}).run())
    at.switch_page("kb/ui/ask_page.py").run()
    at.text_input(key="ask:text").set_value(NO_EVIDENCE).run()
    ok(at)
    assert any("No sufficient evidence" in w.value for w in at.warning)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "2" and int(metrics["Passages"]) == sum(d.chunks for d in app_kb.documents())
    page = texts(at)
    assert "What was searched" in page and "Closest passages" in page
    assert "de · German" in page and "en · English" in page
    assert not any(b.label.startswith("Open [") for b in at.button)  # no citations
    assert any(b.label.startswith("Open p. ") for b in at.button)  # but the closest passages open


# --- library --------------------------------------------------------------------------------------------------------
def test_library_lists_documents_and_a_correction_reaches_csv_registry_and_index(app_kb: KnowledgeBase) -> None:
    at = ok(app().run())
    at.switch_page("kb/ui/library_page.py").run()
    ok(at)
    table = at.dataframe[0].value
    assert set(table["file"]) == {FACTSHEET, GEMATIK}
    assert set(table.columns) >= {"title", "language", "pages", "OCR pages", "passages", "objectives", "status"}
    assert set(table["status"]) == {"indexed"}

    doc = app_kb.registry.by_file(GEMATIK)
    at.selectbox(key="library:doc").set_value(doc.doc_id).run()
    at.text_input(key=f"library:title:{doc.doc_id}").set_value("Leitfaden Pseudonymisierung (korrigiert)")
    at.text_input(key=f"library:country:{doc.doc_id}").set_value("at ")
    at.text_input(key=f"library:year:{doc.doc_id}").set_value("2023")
    button(at, "Save corrections").click().run()
    ok(at)
    assert any("Saved the corrections" in s.value for s in at.success)

    row = next(r for r in read_table(app_kb.settings.metadata_csv) if r["sha256"] == doc.sha256)
    assert (row["title"], row["country"], row["year"]) == ("Leitfaden Pseudonymisierung (korrigiert)", "AT", "2023")
    assert row["file"] == GEMATIK and row["publisher"] == ""  # only what was changed is pinned
    assert app_kb.document(doc.doc_id).meta.title == "Leitfaden Pseudonymisierung (korrigiert)"
    hits = app_kb.search("Pseudonymisierung", SearchFilters(year_from=2023, year_to=2023)).hits
    assert hits and {h.title for h in hits} == {"Leitfaden Pseudonymisierung (korrigiert)"}  # payload, no re-embed
    # a later ingest that re-reads the file applies the same correction (the CSV is in ingest's format)
    again = build_metadata(Path(doc.paths[0]), doc.sha256, [], {}, "de", [], read_table(app_kb.settings.metadata_csv))
    assert (again.title, again.country, again.year) == ("Leitfaden Pseudonymisierung (korrigiert)", "AT", 2023)


def test_editor_password_guards_changes_but_not_search(app_kb: KnowledgeBase, monkeypatch) -> None:
    monkeypatch.setattr(app_kb.settings, "editor_password", "s3cret")
    at = ok(app({"q": "ENISA"}).run())
    assert any(b.label.startswith("Open p. ") for b in at.button)  # searching stays open
    at.switch_page("kb/ui/library_page.py").run()
    assert not [b for b in at.button if b.label == "Save corrections"]
    at.text_input(key="editor:pw:library").set_value("wrong").run()
    assert any("Wrong password" in e.value for e in at.error)
    assert not at.file_uploader
    at.text_input(key="editor:pw:library").set_value("s3cret").run()
    ok(at)
    assert [b for b in at.button if b.label == "Save corrections"]
    at.switch_page("kb/ui/add_page.py").run()
    assert at.file_uploader  # unlocked for the session


def test_library_page_reviews_a_tag_and_every_view_shows_why_a_passage_counts(app_kb: KnowledgeBase) -> None:
    doc = app_kb.registry.by_file(GEMATIK)
    tagged = next(p for p in app_kb.document_passages(doc.doc_id) if p["labels"])
    label = max(tagged["label_scores"], key=tagged["label_scores"].get)
    at = ok(app().run())
    at.switch_page("kb/ui/library_page.py").run()
    at.selectbox(key="library:doc").set_value(doc.doc_id).run()
    ok(at)
    assert f"because: “{tagged['label_triggers'][label][:40]}" in texts(at)  # the trigger sentence, quoted
    button_key = f"library:tags:reject:{tagged['chunk_id']}:{label}"
    at.button(key=button_key).click().run()
    ok(at)
    assert any(f"Rejected {label}" in s.value for s in at.success)
    [stored] = [p for p in app_kb.document_passages(doc.doc_id) if p["chunk_id"] == tagged["chunk_id"]]
    assert label not in stored["labels"] and stored["label_reviews"] == {label: "rejected"}
    assert app_kb.registry.tag_reviews(doc.doc_id) == {tagged["chunk_id"]: {label: TagVerdict.REJECTED}}
    at.button(key=button_key).click().run()  # "Undo": the tagger decides again
    ok(at)
    [stored] = [p for p in app_kb.document_passages(doc.doc_id) if p["chunk_id"] == tagged["chunk_id"]]
    assert label in stored["labels"] and not stored["label_reviews"]

    at.switch_page("kb/ui/alignment_page.py").run()
    at.segmented_control(key="align:by").set_value("document").run()
    at.selectbox(key="align:label").set_value(label).run()
    at.selectbox(key="align:column").set_value(GEMATIK).run()
    ok(at)
    assert "counts for this objective because: “" in texts(at)
    assert at.expander and any(e.label == "Why these objectives" for e in at.expander)


# --- add documents --------------------------------------------------------------------------------------------------
def test_upload_a_good_and_a_bad_file_then_remove_the_good_one(app_kb: KnowledgeBase) -> None:
    at = ok(app().run())
    at.switch_page("kb/ui/add_page.py").run()
    html_as_pdf = b"<!DOCTYPE html><html><body><p>Saved from a browser</p></body></html>"
    at.file_uploader[0].set_value([
        ("../../Telemedisin i kommunene.md", NOTE.encode(), "text/markdown"),
        ("report.pdf", html_as_pdf, "application/pdf"),
    ])  # fmt: skip
    button(at, "Add to the library").click().run()
    ok(at)
    checks = at.dataframe[0].value
    by_file = dict(zip(checks["file"], zip(checks["upload"], checks["note"], strict=True), strict=True))
    assert by_file["report.pdf"][0] == "refused" and "mislabelled" in by_file["report.pdf"][1]
    assert by_file["../../Telemedisin i kommunene.md"][0] == "saved"
    report = at.dataframe[1].value
    assert list(report["status"]) == ["added"] and report["language"][0] == "no"
    stored = app_kb.settings.corpus_dir / "Telemedisin i kommunene.md"
    assert stored.exists() and not (app_kb.settings.corpus_dir / "report.pdf").exists()
    assert not list(app_kb.settings.corpus_dir.glob(".upload-*"))
    assert any("Ingest finished: 1 added" in s.value for s in at.success)
    assert app_kb.search("videokonsultasjon fastlegen", SearchFilters(languages=["no"])).hits

    # the same bytes again are a duplicate, not a second document
    at.file_uploader[0].set_value(("copy.md", NOTE.encode(), "text/markdown"))
    button(at, "Add to the library").click().run()
    checks = at.dataframe[0].value
    assert list(checks["upload"]) == ["duplicate"] and "Telemedisin i kommunene.md" in checks["note"][0]

    # remove it from the Library page: file, points and registry rows go
    doc = app_kb.registry.by_file("Telemedisin i kommunene.md")
    at.switch_page("kb/ui/library_page.py").run()
    at.selectbox(key="library:doc").set_value(doc.doc_id).run()
    at.checkbox(key=f"library:sure:{doc.doc_id}").check().run()
    button(at, "Remove").click().run()
    ok(at)
    assert any("Removed Telemedisin i kommunene.md" in s.value for s in at.success)
    assert not stored.exists() and app_kb.document(doc.doc_id) is None
    assert not app_kb.store.point_ids(doc.doc_id)
    assert not app_kb.search("videokonsultasjon fastlegen", SearchFilters(languages=["no"])).hits


# --- ingest banner ---------------------------------------------------------------------------------------------------
def test_every_page_shows_a_running_ingest_and_offers_a_refresh_when_it_ends(app_kb: KnowledgeBase) -> None:
    from kb.records import IngestProgress

    before = app_kb.ingest_progress
    try:
        app_kb.ingest_progress = IngestProgress(running=True, files_total=4, files_done=1, pages=12, passages=30,
                                                current_file="report.pdf", stage="embedding")  # fmt: skip
        at = ok(app().run())
        [bar] = at.get("progress")
        assert "Updating the library: 1 of 4 files · 12 pages · 30 passages · 0 OCR pages" in bar.proto.text
        app_kb.ingest_progress = app_kb.ingest_progress.model_copy(update={"running": False, "files_done": 4})
        at.run()
        ok(at)
        assert any("Library updated: 4 of 4 files" in s.value for s in at.success)
        button(at, "Refresh").click().run()
        ok(at)
        assert not at.get("progress") and not any("Library updated" in s.value for s in at.success)
    finally:
        app_kb.ingest_progress = before


# --- compare and saved searches --------------------------------------------------------------------------------------
def test_compare_page_with_filters_and_a_country_the_library_lacks(app_kb: KnowledgeBase) -> None:
    at = ok(app().run())
    at.switch_page("kb/ui/compare_page.py").run()
    ok(at)
    at.multiselect(key="compare:compared").set_value(["EE", "DE"]).run()
    at.multiselect(key="compare:languages").set_value(["de"]).run()
    at.text_input(key="compare:text").set_value("How are records pseudonymised for research?").run()
    ok(at)
    assert "Country discussed" not in [m.label for m in at.multiselect]  # each row sets its own country
    page = texts(at)
    assert "EE · Estonia" in page and "DE · Germany" in page
    assert sum("No evidence in the library" in w.value for w in at.warning) == 2
    assert at.query_params["c"] in (["EE", "DE"], "EE") and "de" in str(at.query_params.get("lang"))
    assert {b.label for b in at.get("download_button")} >= {"CSV", "Brief"}
    at.text_input(key="compare:save-name").set_value("records in EE and DE").run()
    button(at, "Save search").click().run()
    ok(at)
    [saved] = [s for s in app_kb.saved_searches() if s.name == "records in EE and DE"]
    assert saved.kind == "compare" and saved.countries == ["EE", "DE"] and saved.filters.languages == ["de"]
    at.switch_page("kb/ui/saved_page.py").run()
    ok(at)
    assert "records in EE and DE" in texts(at) and any("nothing new" in m.value for m in at.markdown)
    app_kb.delete_saved_search("records in EE and DE")


# --- alignment -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["country", "about"])
def test_alignment_page_heatmap_cell_passages_and_gaps(app_kb: KnowledgeBase, by: str) -> None:
    at = ok(app().run())
    at.switch_page("kb/ui/alignment_page.py").run()
    ok(at)
    at.segmented_control(key="align:by").set_value(by).run()
    ok(at)
    cov = app_kb.coverage(by=by)
    if by == "about":  # the factsheet and the gematik guide discuss no country: the page says so
        assert not cov.columns and any("No passage of the library names a country" in i.value for i in at.info)
        return
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert "Gaps" in [h.value for h in at.subheader]
    label, column = max(((lab, col) for lab in cov.labels for col in cov.columns),
                        key=lambda lc: cov.counts.get(lc[0], {}).get(lc[1], 0))  # fmt: skip
    at.selectbox(key="align:label").set_value(label).run()
    at.selectbox(key="align:column").set_value(column).run()
    ok(at)
    n = cov.counts[label][column]
    assert f"{n} passages in this cell" in texts(at)
    assert any(b.label.startswith("Open p. ") for b in at.button)
    assert any(g.split(" ")[0] in texts(at) for g in cov.gaps) if cov.gaps else True


# --- exports ---------------------------------------------------------------------------------------------------------
def _doc(**meta: object) -> Document:
    return Document(doc_id="abcd1234abcd1234", sha256="ab" * 32, paths=["/lib/who_ethics.pdf"],
                    meta=DocumentMeta(**meta))  # fmt: skip


def test_export_hits_csv_and_answer_markdown_from_real_results(app_kb: KnowledgeBase) -> None:
    hits = app_kb.search("cybersecurity support centre for hospitals").hits
    rows = list(csv.DictReader(io.StringIO(hits_csv(hits))))
    assert len(rows) == len(hits) and rows[0]["rank"] == "1"
    assert rows[0]["file"] == hits[0].file and rows[0]["page"] == str(hits[0].page)
    assert "**" not in rows[0]["snippet"] and rows[0]["text"] == hits[0].text

    answer = app_kb.ask("Which EU agency will support hospitals with cybersecurity?")
    md = answer_markdown(answer, common.label_names(app_kb))
    assert md.startswith("# Which EU agency") and "## References" in md
    for c in answer.citations:
        assert f"[{c.n}] " in md and f"p. {c.page}" in md
    none = answer_markdown(app_kb.ask(NO_EVIDENCE))
    assert "No sufficient evidence" in none and "## What was searched" in none and "## References" not in none


def test_export_bibtex_and_ris_of_cited_documents() -> None:
    who = _doc(title="Ethics & governance of AI for health", publisher="World Health Organization", year=2021,
               doc_type="guideline", language="en", url="https://www.who.int/x", country="INT")  # fmt: skip
    law = Document(doc_id="ffff0000ffff0000", sha256="cd" * 32, paths=["/lib/ehds.pdf"],
                   meta=DocumentMeta(title="Regulation (EU) 2025/327", publisher="European Union", year=2025,
                                     doc_type="law"))  # fmt: skip
    bib = bibtex([who, law])
    assert bib.count("@") == 2 and "@techreport{WorldHealthOrganization2021Ethics," in bib
    assert "title = {Ethics \\& governance of AI for health}" in bib and "author = {{World Health Organization}}" in bib
    assert "@misc{EuropeanUnion2025Regulation," in bib and "url = {https://www.who.int/x}" in bib
    assert bib.count("{") == bib.count("}")
    r = ris([who, law])
    assert r.count("TY  - ") == 2 and r.count("ER  - ") == 2
    assert "TY  - RPRT" in r and "TY  - STAT" in r and "PY  - 2021" in r and "UR  - https://www.who.int/x" in r
    assert [d.doc_id for d in cited_documents([law.doc_id, who.doc_id, law.doc_id, "unknown"], [who, law])] == [
        law.doc_id, who.doc_id,
    ]  # fmt: skip
    answer = Answer(question="q?", answer="A [1].", abstained=False, mode="evidence",
                    citations=[Citation(n=1, doc_id=who.doc_id, file="who_ethics.pdf", title=who.meta.title, page=7,
                                        quote="Quote.", publisher="WHO", year=2021)])  # fmt: skip
    assert "[1] Ethics & governance of AI for health. WHO, 2021. who_ethics.pdf, p. 7." in answer_markdown(answer)


# --- uploads ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Desktop\\Strategy 2025.PDF", "Strategy 2025.pdf"),
        (".hidden.pdf", "hidden.pdf"),
        ("..", "upload"),
        ("rapport\x00\x1b[31m.pdf", "rapport_31m.pdf"),
        ("stratégie_numérique;rm -rf.pdf", "stratégie_numérique_rm -rf.pdf"),
        ("a" * 300 + ".pdf", "a" * 116 + ".pdf"),
    ],
)
def test_safe_name(given: str, expected: str) -> None:
    assert safe_name(given) == expected


def test_save_upload_checks_size_type_content_and_never_overwrites(make_settings) -> None:
    s = make_settings(upload_max_mb=1, editor_password="pw")
    pdf = (SHARED_CORPUS / FACTSHEET).read_bytes()[: 1024 * 1024 - 1]  # a real PDF head: sniffed as PDF
    big = save_upload(s, "big.pdf", b"%PDF-1.7" + b"0" * (1024 * 1024))
    assert big.status == "refused" and "too large" in big.message
    assert save_upload(s, "tool.exe", b"MZ\x90\x00").message.startswith("unsupported file type '.exe'")
    binary = save_upload(s, "notes.docx", b"\x00\x01\x02\x03" * 64)
    assert binary.status == "refused" and "mislabelled or corrupt" in binary.message
    assert "notes.docx" not in {p.name for p in s.corpus_dir.iterdir()}

    first = save_upload(s, "../Strategy.pdf", pdf)
    assert first.ok and first.path == s.corpus_dir / "Strategy.pdf" and first.path.read_bytes() == pdf
    same = save_upload(s, "Strategy.pdf", pdf)
    assert same.status == "duplicate" and same.path == first.path
    other = save_upload(s, "Strategy.pdf", pdf[:-10] + b"%%EOF\n\n\n\n\n")
    assert other.ok and other.path.name == "Strategy-2.pdf" and first.path.read_bytes() == pdf
    assert "a different document is already called Strategy.pdf" in other.message
    known = save_upload(s, "renamed.pdf", pdf, known_path=str(first.path))
    assert known.status == "duplicate" and "Strategy.pdf" in known.message
    assert sorted(p.name for p in s.corpus_dir.iterdir()) == ["Strategy-2.pdf", "Strategy.pdf"]  # no temp left

    assert check_password(s, "pw") and not check_password(s, "PW") and not check_password(s, None)
    assert check_password(make_settings(editor_password=None), None)


# --- watcher ---------------------------------------------------------------------------------------------------------
def test_watcher_ingests_a_file_dropped_into_the_folder_once_it_is_stable(app_kb: KnowledgeBase) -> None:
    watcher = Watcher(app_kb, interval_s=0)
    assert watcher.poll_once() is None and watcher.poll_once() is None  # in line with the registry: nothing to do
    dropped = app_kb.settings.corpus_dir / "sub" / "Avstandsoppfølging.md"
    dropped.parent.mkdir()
    dropped.write_text(NOTE.replace("2027", "2028"), encoding="utf-8")
    (app_kb.settings.corpus_dir / ".~lock.x.md#").write_text("lock", encoding="utf-8")  # hidden: ignored
    assert watcher.poll_once() is None  # seen once: maybe still being copied
    report = watcher.poll_once()
    assert report is not None and [f.status.value for f in report.files if f.status.value != "unchanged"] == ["added"]
    assert watcher.status.last_report is report and watcher.status.last_error == ""
    assert watcher.poll_once() is None
    doc = app_kb.registry.by_file("Avstandsoppfølging.md")
    assert doc is not None and doc.status == "indexed"
    app_kb.remove_document(doc.doc_id)
    assert not dropped.exists()


# --- pure helpers ----------------------------------------------------------------------------------------------------
def test_query_parameters_round_trip_to_filters() -> None:
    f = common.filters_from_params({"lang": ["fr", "de"], "country": ["FR"], "year_from": ["2020"], "year_to": ["x"],
                                    "objective": ["GSDH.SO3"], "type": [""]})  # fmt: skip
    assert f == SearchFilters(languages=["fr", "de"], countries=["FR"], year_from=2020, objectives=["GSDH.SO3"])
    assert common.params_from_filters(f, q="santé") == {"q": "santé", "lang": ["fr", "de"], "country": ["FR"],
                                                          "objective": ["GSDH.SO3"], "year_from": "2020"}  # fmt: skip
    assert common.snippet_markdown("cost $5 and **the *best* match** here") == (
        "cost \\$5 and **the \\*best\\* match** here"
    )


def test_passage_pieces_are_located_on_the_page_text() -> None:
    assert bold_pieces("… a **first one.** b **second one** c") == ["first one.", "second one"]
    assert quote_pieces("First sentence is long enough. Second one is long too … Third sentence here.") == [
        "First sentence is long enough.", "Second one is long too", "Third sentence here.",
    ]  # fmt: skip
    page = "MAIN ACTIONS\r\nENISA, the EU agency for cyber-\r\nsecurity, will support hospitals and healthcare"
    start, end = locate(page, "ENISA, the EU agency for cybersecurity, will support hospitals")
    assert page[start:end].startswith("ENISA") and page[start:end].endswith("hospitals")
    assert locate(page, "a sentence that is nowhere on this page") is None
