"""Safe uploads into the drop folder: what a browser sends is checked before it can reach the library.

- the name is reduced to a plain base name (no folders, no ``..``, no control or shell characters, bounded length);
- the size is limited (``KB_UPLOAD_MAX_MB``);
- the type is decided from the bytes (``ingest.filetypes.sniff``): HTML saved as ``.pdf`` or a zip named ``.docx``
  is refused with the reason, before it is stored;
- nothing is overwritten silently: the same bytes already in the library are reported as a duplicate, and a
  different document under the same name is stored as ``name-2.pdf``;
- the file appears under its final name in one atomic rename, so the watcher never reads a half-written file;
- with ``KB_EDITOR_PASSWORD`` set, uploading, editing and deleting need it (searching never does).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError
from ingest.filetypes import SUPPORTED_SUFFIXES, sha256_file, sniff
from kb.settings import Settings

MAX_NAME_CHARS = 120
ACCEPTED_EXTENSIONS = sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES)
_UNSAFE = re.compile(r"[^\w.\-+() ]+")


@dataclass
class UploadResult:
    name: str  # the name as uploaded
    status: str  # "saved", "duplicate" or "refused"
    message: str
    path: Path | None = None  # where it was stored (saved), or the library file holding the same bytes (duplicate)

    @property
    def ok(self) -> bool:
        return self.status == "saved"


def safe_name(name: str) -> str:
    """A plain, portable base name: no directories, no traversal, no hidden or control characters."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" .")  # no leading dot (hidden, '..'), no trailing dot or space
    base = re.sub(r"_+", "_", base)
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.strip(" ._") or "upload"
    suffix = suffix.lower()[:10]
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1]
    return f"{stem}.{suffix}" if suffix else stem


def editor_required(settings: Settings) -> bool:
    return bool(settings.editor_password)


def check_password(settings: Settings, given: str | None) -> bool:
    """True when no editor password is set, or when ``given`` matches it (constant-time comparison)."""
    if not settings.editor_password:
        return True
    return hmac.compare_digest((given or "").encode(), settings.editor_password.encode())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _free_name(folder: Path, name: str, sha: str) -> tuple[Path, Path | None]:
    """(where to store, or the existing file with these very bytes)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = folder / name, 1
    while candidate.exists():
        if candidate.is_file() and sha256_file(candidate) == sha:
            return candidate, candidate
        n += 1
        candidate = folder / f"{stem}-{n}{suffix}"
    return candidate, None


def _publish(tmp: Path, target: Path) -> None:
    """Give ``tmp`` its final name in one step, never replacing an existing file."""
    try:
        os.link(tmp, target)  # fails with FileExistsError instead of overwriting
    except FileExistsError:
        raise
    except OSError:  # no hard links on this filesystem
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(tmp, target)


def save_upload(settings: Settings, name: str, data: bytes, known_path: str | None = None) -> UploadResult:
    """Check one uploaded file and store it in the drop folder.

    ``known_path``: a path the registry already holds for these bytes (the caller looks the sha256 up), so a
    document is not added twice under another name.
    """
    limit = settings.upload_max_mb * 1024 * 1024
    if len(data) > limit:
        return UploadResult(name, "refused", f"too large: {len(data) / 1e6:.1f} MB (limit {settings.upload_max_mb} MB)")
    clean = safe_name(name)
    suffix = Path(clean).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(f".{e}" for e in ACCEPTED_EXTENSIONS)
        return UploadResult(name, "refused", f"unsupported file type '{suffix or 'no extension'}' (accepted: {kinds})")
    folder = settings.corpus_dir
    folder.mkdir(parents=True, exist_ok=True)
    sha = _sha256(data)
    if known_path and Path(known_path).exists():
        return UploadResult(name, "duplicate", f"already in the library as {Path(known_path).name}", Path(known_path))

    # Write under a hidden temporary name (ingestion and the watcher skip dot-files), check, then rename.
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            sniff(tmp)
        except IngestError as exc:
            return UploadResult(name, "refused", str(exc))
        for _ in range(20):
            target, same = _free_name(folder, clean, sha)
            if same is not None:
                return UploadResult(name, "duplicate", f"already in the library as {same.name}", same)
            try:
                _publish(tmp, target)
                break
            except FileExistsError:  # another upload took the name in between: look again
                continue
        else:
            return UploadResult(name, "refused", f"could not find a free name for {clean}")
        note = f"saved as {target.name}"
        if target.name != clean:
            note += f" (a different document is already called {clean})"
        elif clean != name:
            note += " (name cleaned)"
        return UploadResult(name, "saved", note, target)
    finally:
        tmp.unlink(missing_ok=True)
