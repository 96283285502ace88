"""Download the seed library listed in corpus/sources.csv, verifying each file's sha256.

Only public, direct URLs are fetched; where a machine is offline or a source has no direct link, the report
says so plainly and staff can drop the file into the folder by hand.
"""

from __future__ import annotations

import hashlib
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from pydantic import BaseModel

from ingest.metadata import read_table


class FetchResult(BaseModel):
    file: str
    status: str  # present, downloaded, failed
    detail: str = ""


def fetch_corpus(catalogue: Path, dest: Path, timeout_s: float = 30.0) -> list[FetchResult]:
    dest.mkdir(parents=True, exist_ok=True)
    results: list[FetchResult] = []
    for row in read_table(catalogue):
        name, sha, url = row.get("file", ""), row.get("sha256", ""), row.get("url", "")
        target = dest / name
        if target.exists() and _sha(target.read_bytes()) == sha:
            results.append(FetchResult(file=name, status="present"))
            continue
        if not url.lower().endswith(".pdf") and not url.lower().endswith((".md", ".txt")):
            results.append(FetchResult(file=name, status="failed", detail=f"no direct download link ({url or 'none'})"))
            continue
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                data = resp.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            results.append(FetchResult(file=name, status="failed", detail=f"cannot download {url}: {exc}"))
            continue
        if _sha(data) != sha:
            results.append(FetchResult(file=name, status="failed", detail="downloaded bytes do not match sha256"))
            continue
        with tempfile.NamedTemporaryFile(dir=dest, delete=False, suffix=".part") as tmp:
            tmp.write(data)
        Path(tmp.name).replace(target)
        results.append(FetchResult(file=name, status="downloaded"))
    return results


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
