"""Fetch the seed library listed in corpus/sources.csv into the drop folder.

Why it works this way:

- ``make run`` must start on whatever is on disk, so a document that simply cannot be reached (offline, no direct
  link, a conversion shipped with the repository) is a *soft* failure: reported, but the fetch still exits 0.
- Publishers re-issue files, so bytes that differ from the catalogue's sha256 are kept and their new hash is
  recorded in ``<folder>/.fetched.json`` ("hash-changed"); sources.csv is tracked and is never rewritten.
- A publisher's error or login page often comes back as ``200 OK``, so the bytes are checked (a real PDF, real
  text) before they are kept.
- The ingest scanner and the app's watcher read the folder while we write, so bytes land under a hidden name
  (dot-files are skipped by both) and appear by one atomic rename.

Exit-code contract (``kb corpus fetch``): 0 every document is present or was fetched, or failed only softly;
1 at least one download failed for a real reason (HTTP error, not a PDF, truncated, too large, cannot write);
2 the catalogue is missing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from pydantic import BaseModel

from ingest.errors import IngestError
from ingest.filetypes import SUPPORTED_SUFFIXES, sha256_file, sniff
from ingest.metadata import read_table

STATE_NAME = ".fetched.json"
TMP_PREFIX = ".fetch-"
USER_AGENT = "digital-health-kb/corpus-fetch (python-urllib)"
CHUNK = 64 * 1024
STALE_TMP_S = 3600.0  # a hidden temporary older than this is left over from a killed fetch

Progress = Callable[[str, int, int | None], None]  # file, bytes so far, total bytes (None: unknown)


class Status(StrEnum):
    PRESENT = "present"
    DOWNLOADED = "downloaded"
    HASH_CHANGED = "hash-changed"
    FAILED = "failed"


class Reason(StrEnum):
    """Why a document failed; the first three are soft (the library is as complete as it can be here)."""

    OFFLINE = "offline"  # DNS failure, network unreachable, refused, timed out
    NO_LINK = "no-link"  # the publisher offers no direct download we know of
    CONVERSION = "conversion"  # our copy is a text conversion of the publisher's PDF: never replaced by a download
    HTTP = "http"  # the server answered with an error status
    CONTENT = "content"  # the bytes are not the expected kind of file (HTML error page, truncated PDF ...)
    TOO_LARGE = "too-large"
    IO = "io"  # cannot write into the folder, unsafe name, bad URL


SOFT_REASONS = frozenset({Reason.OFFLINE, Reason.NO_LINK, Reason.CONVERSION})


class FetchResult(BaseModel):
    file: str
    status: Status
    detail: str = ""
    reason: Reason | None = None  # set when status is failed
    url: str = ""
    sha256: str = ""  # of the file now on disk (empty when there is none)
    catalogue_sha256: str = ""
    bytes: int = 0

    @property
    def soft(self) -> bool:
        """A failure that leaves nothing to fix here (offline, no direct link, shipped conversion)."""
        return self.status is Status.FAILED and self.reason in SOFT_REASONS


def exit_code(results: list[FetchResult]) -> int:
    """0 when everything is present/fetched or failed only softly, 1 when a download really failed."""
    return 1 if any(r.status is Status.FAILED and not r.soft for r in results) else 0


class _FetchError(Exception):
    def __init__(self, reason: Reason, detail: str, *, offline_hint: bool = False) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.offline_hint = reason, detail, offline_hint


class _Network:
    """Per-run memory of unreachable hosts, so an offline machine fails fast instead of once per document."""

    def __init__(self) -> None:
        self.dead: dict[str, str] = {}  # host:port -> first error
        self.offline_hosts: set[str] = set()  # hosts that failed with DNS / network-unreachable errors
        self.successes = 0

    @property
    def offline(self) -> bool:
        return self.successes == 0 and len(self.offline_hosts) >= 2

    def skip_reason(self, host: str) -> str | None:
        if self.offline:
            first = next(iter(self.dead.values()), "")
            return f"skipped: this machine looks offline ({first})"
        if host in self.dead:
            return f"skipped: {host} was unreachable earlier in this run ({self.dead[host]})"
        return None

    def failed(self, host: str, exc: _FetchError) -> None:
        self.dead.setdefault(host, exc.detail)
        if exc.offline_hint:
            self.offline_hosts.add(host)


def fetch_corpus(
    catalogue: Path,
    dest: Path,
    timeout_s: float = 30.0,
    progress: Progress | None = None,
    max_bytes: int = 200 * 1024 * 1024,
) -> list[FetchResult]:
    """Make every document of the catalogue present in ``dest``; one result per catalogue row."""
    if not catalogue.exists():
        raise FileNotFoundError(f"no seed catalogue at {catalogue}")
    dest.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(dest)
    state = _load_state(dest)
    net = _Network()
    results = []
    for row in read_table(catalogue):
        if not row.get("file"):
            continue
        results.append(_fetch_one(row, dest, state, net, timeout_s, progress, max_bytes))
    return results


def _fetch_one(
    row: dict[str, str],
    dest: Path,
    state: dict[str, dict],
    net: _Network,
    timeout_s: float,
    progress: Progress | None,
    max_bytes: int,
) -> FetchResult:
    name, expected, url = row["file"], row.get("sha256", "").lower(), row.get("download_url", "")
    base = FetchResult(file=name, status=Status.FAILED, url=url, catalogue_sha256=expected)
    if Path(name).name != name or name.startswith("."):
        return base.model_copy(update={"reason": Reason.IO, "detail": f"unsafe file name in the catalogue: {name!r}"})
    target = dest / name
    if target.is_file():
        return _present(base, target, state.get(name, {}))
    if not url:
        where = row.get("url") or "no address known"
        return base.model_copy(update={"reason": Reason.NO_LINK, "detail": f"no direct download link ({where})"})
    if _is_conversion(name, url):
        detail = (
            f"the publisher's file is {PurePosixPath(urlparse(url).path).suffix} ({url}); this entry is a text "
            "conversion shipped with the repository and is never replaced by a download: restore it from git"
        )
        return base.model_copy(update={"reason": Reason.CONVERSION, "detail": detail})
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return base.model_copy(update={"reason": Reason.IO, "detail": f"not an http(s) URL: {url}"})
    host = parsed.netloc
    skip = net.skip_reason(host)
    if skip:
        return base.model_copy(update={"reason": Reason.OFFLINE, "detail": skip})

    tmp: Path | None = None
    try:
        tmp, sha, size = _download(url, dest, name, timeout_s, progress, max_bytes)
        _check_content(tmp)
        if target.exists():  # someone dropped the file meanwhile: theirs wins
            return _present(base, target, state.get(name, {}))
        os.replace(tmp, target)
        tmp = None
    except _FetchError as exc:
        if exc.reason is Reason.OFFLINE:
            net.failed(host, exc)
        return base.model_copy(update={"reason": exc.reason, "detail": exc.detail})
    except OSError as exc:
        return base.model_copy(update={"reason": Reason.IO, "detail": f"cannot write into {dest}: {exc}"})
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    net.successes += 1
    state[name] = {
        "sha256": sha,
        "catalogue_sha256": expected,
        "url": url,
        "bytes": size,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    note = _save_state(dest, state)
    done = base.model_copy(update={"reason": None, "sha256": sha, "bytes": size})
    if sha == expected:
        return done.model_copy(update={"status": Status.DOWNLOADED, "detail": f"sha256 verified{note}"})
    detail = (
        f"the publisher's file changed: catalogue sha256 {expected or '(none)'}, downloaded {sha}; "
        f"kept, new hash recorded in {STATE_NAME}{note}"
    )
    return done.model_copy(update={"status": Status.HASH_CHANGED, "detail": detail})


def _present(base: FetchResult, target: Path, recorded: dict) -> FetchResult:
    sha, size = sha256_file(target), target.stat().st_size
    if sha == base.catalogue_sha256:
        detail = ""
    elif sha == recorded.get("sha256"):
        detail = f"matches the publisher's newer file recorded in {STATE_NAME} ({recorded.get('fetched_at', '')})"
    else:
        detail = "differs from the catalogue's sha256; the local copy is kept (delete it to fetch the file again)"
    return base.model_copy(
        update={"status": Status.PRESENT, "reason": None, "detail": detail, "sha256": sha, "bytes": size}
    )


def _is_conversion(name: str, url: str) -> bool:
    """True when the link's file type differs from ours (a .pdf link for our .md conversion)."""
    link_suffix = PurePosixPath(urlparse(url).path).suffix.lower()
    return link_suffix in SUPPORTED_SUFFIXES and link_suffix != Path(name).suffix.lower()


def _download(
    url: str, dest: Path, name: str, timeout_s: float, progress: Progress | None, max_bytes: int
) -> tuple[Path, str, int]:
    """Stream ``url`` into a hidden temporary in ``dest``; return its path, sha256 and size."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # follows redirects
    except urllib.error.HTTPError as exc:
        raise _FetchError(Reason.HTTP, f"HTTP {exc.code} {exc.reason} from {url}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _network_error(exc, url, timeout_s) from exc
    stem, suffix = Path(name).stem[:60], Path(name).suffix
    with response:
        total = _content_length(response)
        if total is not None and total > max_bytes:
            raise _FetchError(Reason.TOO_LARGE, f"{url} is {total} bytes, over the {max_bytes}-byte limit")
        fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{stem}-", suffix=f".part{suffix}", dir=dest)
        tmp = Path(tmp_name)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as fh:
                while chunk := response.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise _FetchError(Reason.TOO_LARGE, f"{url} is over the {max_bytes}-byte limit")
                    digest.update(chunk)
                    fh.write(chunk)
                    if progress:
                        progress(name, size, total)
                fh.flush()
                os.fsync(fh.fileno())
            if total is not None and size < total:
                raise _FetchError(Reason.OFFLINE, f"connection closed after {size} of {total} bytes from {url}")
        except (OSError, http.client.HTTPException) as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS):
                raise
            raise _network_error(exc, url, timeout_s) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return tmp, digest.hexdigest(), size


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _network_error(exc: BaseException, url: str, timeout_s: float) -> _FetchError:
    """Say in words why the publisher could not be reached; DNS and unreachable networks hint at offline."""
    cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = urlparse(url).netloc
    if isinstance(cause, socket.gaierror):
        return _FetchError(Reason.OFFLINE, f"cannot resolve {host} (offline?): {cause}", offline_hint=True)
    if isinstance(cause, TimeoutError):
        return _FetchError(Reason.OFFLINE, f"no answer from {host} within {timeout_s:g} s")
    if isinstance(cause, ConnectionRefusedError):
        return _FetchError(Reason.OFFLINE, f"connection refused by {host}")
    if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return _FetchError(Reason.OFFLINE, f"network unreachable for {host} (offline?): {cause}", offline_hint=True)
    return _FetchError(Reason.OFFLINE, f"cannot download {url}: {cause}")


def _check_content(path: Path) -> None:
    """Refuse bytes that are not what the name says: an HTML page saved as .pdf, a truncated PDF."""
    try:
        kind = sniff(path)
    except IngestError as exc:
        raise _FetchError(Reason.CONTENT, f"not kept: {_describe(str(exc))}") from exc
    if kind == "pdf":
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 16 * 1024))
            if b"%%EOF" not in fh.read():
                raise _FetchError(Reason.CONTENT, "not kept: truncated PDF (no %%EOF trailer)")
    elif kind == "text":
        data = path.read_bytes()
        if _looks_like_html(data[:4096]):
            raise _FetchError(Reason.CONTENT, "not kept: the server sent an HTML page, not the text file")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _FetchError(Reason.CONTENT, f"not kept: not UTF-8 text ({exc.reason})") from exc


def _describe(message: str) -> str:
    if "content is HTML" in message:
        return f"the server sent an HTML page (an error or login page?), not the document ({message})"
    return message


def _looks_like_html(head: bytes) -> bool:
    probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return probe.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in probe[:512]


def _load_state(dest: Path) -> dict[str, dict]:
    try:
        data = json.loads((dest / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(dest: Path, state: dict[str, dict]) -> str:
    """Write the state atomically; return a note for the report when it could not be written."""
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}state-", suffix=".json", dir=dest)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
        os.replace(tmp, dest / STATE_NAME)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        return f" (could not record it in {STATE_NAME}: {exc})"
    return ""


def _remove_stale_temporaries(dest: Path) -> None:
    cutoff = time.time() - STALE_TMP_S
    for path in dest.glob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
