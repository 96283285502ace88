"""The real app in a real browser: `streamlit run app.py` on a small library, driven by Playwright + chromium.

Search, open a result's PDF page, ask (with and without evidence), upload a good and a bad file, a file
dropped into the library folder, the Library and Alignment pages. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from kb.settings import Settings
from tests.app_support import build_library
from tests.conftest import SMALL_DOCS

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
STARTUP_S = 240  # the first page loads the embedding model: slow on a busy 2-core machine
NOTE = (
    "# Telemedisin i kommunene\n\nKommunene skal tilby videokonsultasjon med fastlegen til alle innbyggere innen "
    "2027, og Helsedirektoratet følger opp innføringen av digital hjemmeoppfølging av kronisk syke pasienter.\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings, embedder) -> Iterator[dict]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is missing at {CHROMIUM} (apt-get install chromium)")
    root = tmp_path_factory.mktemp("browser-library")
    kb = build_library(root, [SMALL_DOCS["en"], SMALL_DOCS["de"]], base_settings, embedder)
    settings = kb.settings
    kb.close()  # the app process must hold the index: embedded Qdrant admits one
    port = _free_port()
    env = os.environ | {
        "KB_HOME": str(settings.home), "KB_CORPUS_DIR": str(settings.corpus_dir),
        "KB_METADATA_CSV": str(settings.metadata_csv), "KB_WATCH_INTERVAL_S": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    }  # fmt: skip
    env.pop("KB_EDITOR_PASSWORD", None)  # uploads open in this test
    log = (root / "streamlit.log").open("w")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("streamlit did not start: " + (root / "streamlit.log").read_text()[-3000:])
        time.sleep(0.5)
    ARTIFACTS.mkdir(exist_ok=True)
    yield {"url": url, "settings": settings, "log": root / "streamlit.log"}
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server: dict):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])  # fmt: skip
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(90_000)
        yield pg
        browser.close()


def settle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the script run is over and lazily loaded elements (tables, charts) are drawn."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stSkeleton']\")", timeout=timeout_ms)
    page.wait_for_timeout(500)


def shot(page, name: str, full: bool = True) -> None:
    settle(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full)


def nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()


def test_search_then_open_a_result_at_its_page(server: dict, page) -> None:
    page.goto(f"{server['url']}/?q=ENISA+cybersecurity+support+centre+for+hospitals")
    page.get_by_role("button", name="Open p. 2").first.wait_for(timeout=STARTUP_S * 1000)
    assert page.get_by_text("1. Cybersecurity of hospitals and healthcare providers").count()
    shot(page, "search")

    page.get_by_role("button", name="Open p. 2").first.click()
    drawer = page.get_by_role("dialog")
    drawer.get_by_text("page 2 of 2 · passage outlined").wait_for()
    pdf = page.frame_locator("iframe[title*='pdf_viewer']")
    pdf.locator("canvas").first.wait_for(timeout=60_000)
    page.wait_for_timeout(2500)  # pdf.js paints the page and the outline
    shot(page, "search-open-result", full=False)
    assert pdf.locator("[id^='annotation-']").count() >= 1  # the passage is outlined on the page
    page.keyboard.press("Escape")
    drawer.wait_for(state="detached")

    page.goto(f"{server['url']}/?q=Pseudonymisierung&lang=de")  # a link reproduces a filtered search
    page.get_by_role("button", name="Open p. 1").first.wait_for()
    assert page.get_by_text("1. Pseudonymisierung von FHIR-Ressourcen").count()
    assert not page.get_by_text("Cybersecurity of hospitals").count()
    shot(page, "search-filtered")


def test_ask_with_and_without_evidence(server: dict, page) -> None:
    nav(page, "Ask")
    box = page.get_by_label("Your question, in any language")
    box.fill("Which EU agency will support hospitals with cybersecurity?")
    box.press("Enter")
    page.get_by_role("button", name="Open [1]").first.wait_for()
    assert page.get_by_text("Mode: evidence").count()
    shot(page, "ask")
    page.get_by_role("button", name="Open [1]").first.click()
    page.get_by_role("dialog").get_by_text("page ").first.wait_for()
    page.keyboard.press("Escape")

    box.fill("How many goals were scored in the 1998 football World Cup final?")
    box.press("Enter")
    page.get_by_text("No sufficient evidence.").first.wait_for()
    # the coverage block renders after the verdict line: wait for it rather than count at once
    page.get_by_text("What was searched").first.wait_for()
    page.get_by_text("Closest passages").first.wait_for()
    shot(page, "ask-no-evidence")


def test_strict_ask_shows_each_of_the_three_outcomes(server: dict, page) -> None:
    page.goto(f"{server['url']}/ask")
    page.get_by_text("Strict: answer only when a sentence answers the question").click()
    box = page.get_by_label("Your question, in any language")

    box.fill("Which EU agency will support hospitals with cybersecurity?")
    box.press("Enter")
    answered = page.locator(".st-key-ask-answer")
    answered.get_by_text("A quoted sentence answers the question").wait_for()
    assert "ENISA" in answered.inner_text()

    box.fill("How much money does the EU give each hospital for cybersecurity?")  # on topic, not in the factsheet
    box.press("Enter")
    closest = page.locator(".st-key-ask-outcome-closest-evidence")
    closest.get_by_text("Closest evidence — it may not answer your question.").wait_for()
    assert "no sentence answers the question" in closest.inner_text()
    assert not page.locator(".st-key-ask-answer").count()
    shot(page, "ask-closest-evidence")

    box.fill("Who won the 1998 football world cup?")
    box.press("Enter")
    absent = page.locator(".st-key-ask-outcome-not-in-library")
    absent.get_by_text("No sufficient evidence.").wait_for()
    assert not page.locator(".st-key-ask-outcome-closest-evidence").count()


def test_upload_a_good_and_a_bad_file(server: dict, page, tmp_path: Path) -> None:
    good = tmp_path / "Telemedisin i kommunene.md"
    good.write_text(NOTE, encoding="utf-8")
    bad = tmp_path / "saved-page.pdf"
    bad.write_bytes(b"<!DOCTYPE html><html><body>not a PDF</body></html>")
    nav(page, "Add documents")
    page.locator("input[type=file]").set_input_files([str(good), str(bad)])
    page.get_by_text("saved-page.pdf").first.wait_for()
    page.get_by_role("button", name="Add to the library").click()
    page.get_by_text("Ingest finished: 1 added").wait_for(timeout=180_000)
    shot(page, "add-documents")
    assert (server["settings"].corpus_dir / good.name).exists()
    assert not (server["settings"].corpus_dir / bad.name).exists()


def test_a_file_dropped_into_the_folder_appears_in_the_library(server: dict, page) -> None:
    corpus = server["settings"].corpus_dir
    (corpus / "Avstandsoppfolging.md").write_text(NOTE.replace("2027", "2028"), encoding="utf-8")
    expected = str(len([p for p in corpus.iterdir() if p.name != "metadata.csv"]))
    nav(page, "Library")
    deadline = time.time() + 120
    while True:
        settle(page)
        if page.get_by_test_id("stMetricValue").first.inner_text().strip() == expected:
            break
        assert time.time() < deadline, "the watcher did not ingest the dropped file"
        page.wait_for_timeout(2000)
        page.reload()
    shot(page, "library")


def test_alignment_heatmap(server: dict, page) -> None:
    nav(page, "Alignment")
    page.get_by_text("Gaps", exact=True).wait_for()
    page.locator("canvas, svg").first.wait_for()
    shot(page, "alignment")


ESTONIA = (
    "# E-prescriptions in Estonia\n\nIn Estonia, almost all prescriptions have been issued electronically since "
    "2010: patients collect their medicines at any pharmacy with their national ID card.\n"
)
ESTONIA_PHARMACIES = (
    "# Estonian pharmacies\n\nEstonian pharmacies dispense electronic prescriptions from the national "
    "prescription centre, and patients can let a relative collect their medicines with the prescription code.\n"
)


def reload_until(page, text: str, timeout_s: float = 180) -> None:
    """The watcher ingests a dropped file within seconds: reload until the page shows its effect."""
    deadline = time.time() + timeout_s
    while True:
        settle(page)
        if page.get_by_text(text).count():
            return
        assert time.time() < deadline, f"never showed {text!r}"
        page.wait_for_timeout(2000)
        page.reload()


def test_compare_countries_then_save_and_see_what_is_new(server: dict, page) -> None:
    corpus = server["settings"].corpus_dir
    (corpus / "en_estonia-eprescriptions.md").write_text(ESTONIA, encoding="utf-8")
    page.goto(f"{server['url']}/compare?q=How+are+electronic+prescriptions+issued%3F&c=EE&c=DE")
    reload_until(page, "named as “Estonia”")
    assert page.get_by_text("No evidence in the library. No passage in the library discusses this country.").count()
    assert page.get_by_text("evidence for 1 · none for 1").count()
    shot(page, "compare")
    grid = page.get_by_test_id("stDataFrame").bounding_box()
    page.mouse.click(grid["x"] + 12, grid["y"] + 35 + 17)  # the overview's first row (Estonia) opens its quote
    page.get_by_role("dialog").get_by_text("In Estonia, almost all prescriptions").first.wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="detached")
    page.get_by_role("button", name="Open p. 1").first.click()
    page.get_by_role("dialog").get_by_text("passage").first.wait_for()
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Save").click()
    page.get_by_label("Name").fill("E-prescriptions in the Region")
    page.get_by_role("button", name="Save search").click()
    page.get_by_text("Saved as “E-prescriptions in the Region”").wait_for()

    nav(page, "Saved searches")
    page.get_by_text("E-prescriptions in the Region").first.wait_for()
    page.get_by_text("nothing new").wait_for()
    (corpus / "en_estonia-pharmacies.md").write_text(ESTONIA_PHARMACIES, encoding="utf-8")
    reload_until(page, "1 new passage since you last looked")
    page.get_by_text("Show new").click()
    page.get_by_text("From: Estonian pharmacies").wait_for()
    shot(page, "saved-searches")

    page.get_by_role("button", name="Open").first.click()  # back to the comparison, now seen
    page.get_by_text("Compare countries", exact=True).last.wait_for()
    settle(page)
    assert page.get_by_label("Question").input_value() == "How are electronic prescriptions issued?"
    nav(page, "Saved searches")
    page.get_by_text("nothing new").wait_for()
