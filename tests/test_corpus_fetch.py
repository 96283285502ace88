"""kb corpus fetch against a real HTTP server on 127.0.0.1, and the licence rules of the shipped seed library.

The server serves real PDF bytes (the seed documents), so the checks that keep an HTML error page or a truncated
file out of the drop folder are tested on the kind of bytes publishers really send.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.filetypes import sniff
from ingest.metadata import build_metadata, read_table
from kb.corpus_fetch import STATE_NAME, TMP_PREFIX, Reason, Status, exit_code, fetch_corpus
from tests.conftest import REPO, SHARED_CORPUS

CORPUS = REPO / "corpus"
META_FILES = {"README.md", "SOURCES.md", "LICENSES", "sources.csv", "metadata.csv"}
COLUMNS = ["file", "sha256", "title", "publisher", "year", "language", "country", "doc_type", "url", "download_url"]
# The seed documents whose licence allows redistribution, and that licence: the only documents that may be shipped.
REDISTRIBUTABLE = {
    "en_WHO_Global-strategy-on-digital-health-2020-2025_docling-conversion.md": "CC BY-NC-SA 3.0 IGO",
    "en_WHO_Ethics-and-governance-of-AI-for-health_2021.pdf": "CC BY-NC-SA 3.0 IGO",
    "en_WHO_Classification-of-digital-health-interventions-v1_2018.pdf": "CC BY-NC-SA 3.0 IGO",
    "en_EU_EHDS-Regulation-2025-327.pdf": "2011/833/EU",
    "en_EC-DG-SANTE_EHDS-FAQ_2025.pdf": "CC BY 4.0",
    "en_EC_Factsheet-cybersecurity-hospitals-healthcare-providers_2025.pdf": "CC BY 4.0",
    "en_UK-DHSC_Data-saves-lives_2022.txt": "Open Government Licence v3.0",
    "de_gematik_Leitfaden-Pseudonymisierung-ePA-Forschungsdatenzentrum_2024.md": "Apache License 2.0",
}
WHO_PDF = "en_WHO_Classification-of-digital-health-interventions-v1_2018.pdf"
EC_PDF = "en_EC_Factsheet-cybersecurity-hospitals-healthcare-providers_2025.pdf"
HTML_ERROR = b"<!DOCTYPE html>\n<html><head><title>Document not available</title></head><body>Sorry.</body></html>\n"


def _real(name: str) -> bytes:
    """Real seed-document bytes: from ../shared when there, else the same file shipped in corpus/."""
    path = SHARED_CORPUS / name if (SHARED_CORPUS / name).is_file() else CORPUS / name
    return path.read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/pdf"})
    delay_s: float = 0.0


class Server:
    """A real HTTP server in a thread; ``routes`` maps a path to what it answers, ``hits`` records requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                route = owner.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                time.sleep(route.delay_s)
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "drop"


def _catalogue(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "sources.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({"title": row["file"], "url": "https://publisher.example/", **row})
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _leftovers(folder: Path) -> list[str]:
    """Files a failed fetch must never leave: partial downloads and hidden temporaries."""
    return sorted(p.name for p in folder.iterdir() if p.name != STATE_NAME) if folder.exists() else []


# --- downloads ---------------------------------------------------------------------------------------------------
def test_downloads_and_verifies_real_pdf(tmp_path: Path, server: Server, dest: Path) -> None:
    pdf = _real(WHO_PDF)
    server.routes["/bitstream/who.pdf"] = Route(pdf)
    cat = _catalogue(
        tmp_path, [{"file": WHO_PDF, "sha256": _sha(pdf), "download_url": f"{server.base}/bitstream/who.pdf"}]
    )
    seen: list[tuple[int, int | None]] = []

    [res] = fetch_corpus(cat, dest, timeout_s=5, progress=lambda f, done, total: seen.append((done, total)))

    assert res.status is Status.DOWNLOADED, res
    assert (dest / WHO_PDF).read_bytes() == pdf
    assert res.sha256 == _sha(pdf) and res.bytes == len(pdf)
    assert seen[-1] == (len(pdf), len(pdf)) and len(seen) > 1  # a byte progress bar per file
    assert _leftovers(dest) == [WHO_PDF]  # no hidden temporary left behind
    assert json.loads((dest / STATE_NAME).read_text())[WHO_PDF]["sha256"] == _sha(pdf)
    assert exit_code([res]) == 0

    [again] = fetch_corpus(cat, dest, timeout_s=5)
    assert again.status is Status.PRESENT and server.hits == ["/bitstream/who.pdf"]


def test_follows_redirects(tmp_path: Path, server: Server, dest: Path) -> None:
    pdf = _real(EC_PDF)
    server.routes["/old-address"] = Route(status=302, headers={"Location": "/new/factsheet.pdf"})
    server.routes["/new/factsheet.pdf"] = Route(pdf)
    cat = _catalogue(tmp_path, [{"file": EC_PDF, "sha256": _sha(pdf), "download_url": f"{server.base}/old-address"}])

    [res] = fetch_corpus(cat, dest, timeout_s=5)

    assert res.status is Status.DOWNLOADED, res
    assert (dest / EC_PDF).read_bytes() == pdf


def test_publisher_changed_file_is_kept_and_its_hash_recorded(tmp_path: Path, server: Server, dest: Path) -> None:
    old, new = _real(WHO_PDF), _real(EC_PDF)  # the catalogue recorded one PDF, the publisher now serves another
    server.routes["/who.pdf"] = Route(new)
    cat = _catalogue(tmp_path, [{"file": WHO_PDF, "sha256": _sha(old), "download_url": f"{server.base}/who.pdf"}])

    [res] = fetch_corpus(cat, dest, timeout_s=5)

    assert res.status is Status.HASH_CHANGED, res
    assert _sha(old) in res.detail and _sha(new) in res.detail
    assert res.catalogue_sha256 == _sha(old) and res.sha256 == _sha(new)
    assert (dest / WHO_PDF).read_bytes() == new
    state = json.loads((dest / STATE_NAME).read_text())
    assert state[WHO_PDF]["sha256"] == _sha(new) and state[WHO_PDF]["catalogue_sha256"] == _sha(old)
    assert exit_code([res]) == 0
    assert cat.read_text().count(_sha(old)) == 1  # the tracked catalogue is never rewritten

    [again] = fetch_corpus(cat, dest, timeout_s=5)
    assert again.status is Status.PRESENT and STATE_NAME in again.detail
    assert server.hits == ["/who.pdf"]


# --- failures ----------------------------------------------------------------------------------------------------
def test_html_page_for_a_pdf_url_is_refused(tmp_path: Path, server: Server, dest: Path) -> None:
    server.routes["/doc.pdf"] = Route(HTML_ERROR, headers={"Content-Type": "text/html"})
    cat = _catalogue(
        tmp_path, [{"file": WHO_PDF, "sha256": _sha(_real(WHO_PDF)), "download_url": f"{server.base}/doc.pdf"}]
    )

    [res] = fetch_corpus(cat, dest, timeout_s=5)

    assert res.status is Status.FAILED and res.reason is Reason.CONTENT
    assert "HTML" in res.detail
    assert _leftovers(dest) == [] and not (dest / STATE_NAME).exists()
    assert exit_code([res]) == 1


def test_truncated_pdf_is_refused(tmp_path: Path, server: Server, dest: Path) -> None:
    pdf = _real(WHO_PDF)
    server.routes["/who.pdf"] = Route(pdf[: len(pdf) // 2])
    cat = _catalogue(tmp_path, [{"file": WHO_PDF, "sha256": _sha(pdf), "download_url": f"{server.base}/who.pdf"}])

    [res] = fetch_corpus(cat, dest, timeout_s=5)

    assert res.status is Status.FAILED and res.reason is Reason.CONTENT and "truncated" in res.detail
    assert _leftovers(dest) == []


def test_http_404_fails_with_message(tmp_path: Path, server: Server, dest: Path) -> None:
    cat = _catalogue(tmp_path, [{"file": WHO_PDF, "sha256": "0" * 64, "download_url": f"{server.base}/gone.pdf"}])

    [res] = fetch_corpus(cat, dest, timeout_s=5)

    assert res.status is Status.FAILED and res.reason is Reason.HTTP
    assert "HTTP 404" in res.detail and "/gone.pdf" in res.detail
    assert _leftovers(dest) == []
    assert exit_code([res]) == 1


def test_unreachable_url_fails_fast(tmp_path: Path, dest: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/doc.pdf"
    cat = _catalogue(tmp_path, [{"file": WHO_PDF, "sha256": "0" * 64, "download_url": url}])

    start = time.monotonic()
    [res] = fetch_corpus(cat, dest, timeout_s=10)

    assert time.monotonic() - start < 3
    assert res.status is Status.FAILED and res.reason is Reason.OFFLINE and "refused" in res.detail
    assert _leftovers(dest) == []
    assert exit_code([res]) == 0  # unreachable is not something to fix here


def test_slow_server_hits_the_per_request_timeout(tmp_path: Path, server: Server, dest: Path) -> None:
    server.routes["/slow.pdf"] = Route(_real(WHO_PDF), delay_s=3)
    cat = _catalogue(tmp_path, [{"file": WHO_PDF, "sha256": "0" * 64, "download_url": f"{server.base}/slow.pdf"}])

    start = time.monotonic()
    [res] = fetch_corpus(cat, dest, timeout_s=0.5)

    assert time.monotonic() - start < 2.5
    assert res.reason is Reason.OFFLINE and "0.5 s" in res.detail
    assert _leftovers(dest) == []


def test_offline_machine_fails_fast_and_exits_zero(tmp_path: Path, server: Server, dest: Path) -> None:
    """Two unresolvable hosts and no success: the rest is skipped as offline instead of tried one by one."""
    server.routes["/ok.pdf"] = Route(_real(WHO_PDF))
    rows = [
        {"file": "a.pdf", "sha256": "0" * 64, "download_url": "https://seed-one.invalid/a.pdf"},
        {"file": "b.pdf", "sha256": "0" * 64, "download_url": "https://seed-two.invalid/b.pdf"},
        {"file": "c.pdf", "sha256": "0" * 64, "download_url": f"{server.base}/ok.pdf"},
        {"file": "d.pdf", "sha256": "0" * 64, "download_url": ""},
    ]
    start = time.monotonic()
    results = fetch_corpus(_catalogue(tmp_path, rows), dest, timeout_s=5)

    assert time.monotonic() - start < 20
    assert [r.reason for r in results] == [Reason.OFFLINE, Reason.OFFLINE, Reason.OFFLINE, Reason.NO_LINK]
    assert "cannot resolve seed-one.invalid" in results[0].detail
    assert "offline" in results[2].detail and server.hits == []
    assert "no direct download link" in results[3].detail
    assert exit_code(results) == 0
    assert _leftovers(dest) == []


def test_shipped_conversion_is_never_replaced_by_the_publishers_pdf(tmp_path: Path, server: Server, dest: Path) -> None:
    name = "en_WHO_Global-strategy-on-digital-health-2020-2025_docling-conversion.md"
    server.routes["/9789240020924-eng.pdf"] = Route(_real(WHO_PDF))
    text = _real(name)
    cat = _catalogue(
        tmp_path, [{"file": name, "sha256": _sha(text), "download_url": f"{server.base}/9789240020924-eng.pdf"}]
    )

    [missing] = fetch_corpus(cat, dest, timeout_s=5)
    assert missing.reason is Reason.CONVERSION and missing.soft and server.hits == []
    assert _leftovers(dest) == []

    (dest / name).write_bytes(text)
    [present] = fetch_corpus(cat, dest, timeout_s=5)
    assert present.status is Status.PRESENT and present.detail == ""
    assert (dest / name).read_bytes() == text and server.hits == []


def test_html_page_for_a_text_url_is_refused(tmp_path: Path, server: Server, dest: Path) -> None:
    server.routes["/guide.md"] = Route(HTML_ERROR, headers={"Content-Type": "text/html"})
    cat = _catalogue(tmp_path, [{"file": "guide.md", "sha256": "0" * 64, "download_url": f"{server.base}/guide.md"}])

    [res] = fetch_corpus(cat, dest, timeout_s=5)

    assert res.reason is Reason.CONTENT and "HTML" in res.detail
    assert _leftovers(dest) == []


def test_file_dropped_by_staff_is_kept(tmp_path: Path, server: Server, dest: Path) -> None:
    dest.mkdir()
    (dest / WHO_PDF).write_bytes(_real(EC_PDF))
    cat = _catalogue(
        tmp_path, [{"file": WHO_PDF, "sha256": _sha(_real(WHO_PDF)), "download_url": f"{server.base}/x.pdf"}]
    )

    [res] = fetch_corpus(cat, dest, timeout_s=5)

    assert res.status is Status.PRESENT and "differs" in res.detail and server.hits == []
    assert (dest / WHO_PDF).read_bytes() == _real(EC_PDF)


def test_stale_temporaries_are_removed_recent_ones_kept(tmp_path: Path, dest: Path) -> None:
    dest.mkdir()
    stale, recent = dest / f"{TMP_PREFIX}old-x.part.pdf", dest / f"{TMP_PREFIX}new-y.part.pdf"
    stale.write_bytes(b"%PDF-partial")
    recent.write_bytes(b"%PDF-partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    fetch_corpus(_catalogue(tmp_path, []), dest)

    assert not stale.exists() and recent.exists()


def test_cli_json_and_exit_codes(tmp_path: Path, server: Server, dest: Path, monkeypatch) -> None:
    from kb import cli
    from kb.settings import get_settings

    pdf = _real(WHO_PDF)
    server.routes["/who.pdf"] = Route(pdf)
    rows = [
        {"file": WHO_PDF, "sha256": _sha(pdf), "download_url": f"{server.base}/who.pdf"},
        {"file": "later.pdf", "sha256": "0" * 64, "download_url": ""},
    ]
    monkeypatch.setenv("KB_CORPUS_DIR", str(dest))
    monkeypatch.setenv("KB_CATALOGUE_CSV", str(_catalogue(tmp_path, rows)))

    def run(*args: str):
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(cli.app, ["corpus", "fetch", "--timeout", "5", *args])
        finally:
            get_settings.cache_clear()

    ok = run("--json")
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["exit_code"] == 0 and data["totals"]["downloaded"] == 1 and data["totals"]["failed"] == 1
    assert {r["file"]: (r["status"], r["reason"]) for r in data["results"]} == {
        WHO_PDF: ("downloaded", None),
        "later.pdf": ("failed", "no-link"),
    }

    rows.append({"file": "gone.pdf", "sha256": "0" * 64, "download_url": f"{server.base}/gone.pdf"})
    monkeypatch.setenv("KB_CATALOGUE_CSV", str(_catalogue(tmp_path, rows)))
    bad = run()
    assert bad.exit_code == 1
    assert "HTTP 404" in bad.output

    monkeypatch.setenv("KB_CATALOGUE_CSV", str(tmp_path / "missing.csv"))
    assert run().exit_code == 2


# --- the shipped seed library --------------------------------------------------------------------------------------
def _git_files(*args: str) -> list[str] | None:
    try:
        out = subprocess.run(
            ["git", "ls-files", *args, "corpus"], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [Path(line).name for line in out.splitlines() if line.strip()]


def _whitelist() -> set[str]:
    """The corpus files .gitignore lets into git (everything else there is ignored: staff drop files)."""
    lines = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    return {line.removeprefix("!corpus/") for line in lines if line.startswith("!corpus/")}


def _shipped_documents() -> set[str]:
    """Documents tracked in git under corpus/, plus those about to be (untracked but not ignored)."""
    tracked, untracked = _git_files(), _git_files("--others", "--exclude-standard")
    if tracked is None or untracked is None:  # no git (an unpacked archive): what .gitignore admits and is here
        names = {p.name for p in CORPUS.iterdir() if p.is_file()} & _whitelist()
    else:
        on_disk = {p.name for p in CORPUS.iterdir() if p.is_file() and not p.name.startswith(".")}
        names = set(tracked) | (set(untracked) & on_disk)
    return names - META_FILES


def _sources_sections() -> dict[str, str]:
    text = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    parts = re.split(r"^### `([^`]+)`\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_shipped_file_is_redistributable_and_documented() -> None:
    shipped = _shipped_documents()
    catalogue = {row["file"]: row for row in read_table(CORPUS / "sources.csv")}
    sections = _sources_sections()
    licences = (CORPUS / "LICENSES").read_text(encoding="utf-8")

    assert shipped, "no shipped documents found"
    assert shipped <= set(REDISTRIBUTABLE), f"not redistributable: {sorted(shipped - set(REDISTRIBUTABLE))}"
    assert _whitelist() - META_FILES <= set(REDISTRIBUTABLE)  # .gitignore admits nothing else
    for name in sorted(shipped):
        path = CORPUS / name
        assert path.is_file(), f"{name} is tracked but missing from corpus/"
        assert name in catalogue and catalogue[name]["sha256"] == _sha(path.read_bytes()), name
        section = sections.get(name, "")
        licence = re.search(r"^- \*\*Licence\*\*: (.+?)(?=^- \*\*|\Z)", section, flags=re.M | re.S)
        assert licence, f"{name} has no licence in corpus/SOURCES.md"
        words = " ".join(licence.group(1).split())
        assert REDISTRIBUTABLE[name] in words and "https://" in words, (name, words)
        assert re.search(r"^- \*\*Attribution\*\*: \S", section, flags=re.M), name
        assert re.search(r"^- \*\*Original URL\*\*: https?://", section, flags=re.M), name
        assert name in licences, f"{name} is not listed under its licence in corpus/LICENSES"


def test_shipped_library_has_at_least_8_real_documents(tmp_path: Path) -> None:
    shipped = _shipped_documents()
    assert len(shipped) >= 8, sorted(shipped)
    for name in shipped:
        assert sniff(CORPUS / name) in ("pdf", "text"), name


def test_shipped_documents_are_present_for_the_fetch_without_network(tmp_path: Path) -> None:
    """A fresh clone offline: every shipped document is 'present', nothing is downloaded, the fetch exits 0."""
    folder, shipped = tmp_path / "corpus", _shipped_documents()
    folder.mkdir()
    for name in shipped:
        shutil.copy(CORPUS / name, folder / name)
    rows = [row for row in read_table(CORPUS / "sources.csv") if row["file"] in shipped]
    cat = tmp_path / "sources.csv"
    with cat.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    results = fetch_corpus(cat, folder, timeout_s=2)

    assert {r.file for r in results} == shipped
    assert all(r.status is Status.PRESENT and r.detail == "" for r in results), results
    assert exit_code(results) == 0 and not (folder / STATE_NAME).exists()


def test_catalogue_readers_still_work() -> None:
    rows = read_table(CORPUS / "sources.csv")
    assert len(rows) == 23 and all(list(row) == COLUMNS for row in rows)
    assert all(re.fullmatch(r"[0-9a-f]{64}", row["sha256"]) for row in rows)
    assert all(not row["download_url"] or row["download_url"].startswith("https://") for row in rows)
    row = next(r for r in rows if r["file"] == WHO_PDF)
    meta = build_metadata(CORPUS / WHO_PDF, row["sha256"], [], {}, "en", rows, [])
    assert meta.url == row["url"] and meta.publisher == row["publisher"] and meta.year == 2018


def test_a_publisher_updated_file_keeps_its_catalogue_metadata() -> None:
    """Hash-changed bytes under the catalogued name are still that seed document (matched by file name)."""
    rows = read_table(CORPUS / "sources.csv")
    row = next(r for r in rows if r["file"] == WHO_PDF)
    meta = build_metadata(CORPUS / WHO_PDF, "f" * 64, [], {}, "en", rows, [])
    assert meta.title == row["title"] and meta.publisher == row["publisher"] and meta.year == 2018
