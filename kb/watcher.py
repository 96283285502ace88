"""The drop-folder watcher: files copied straight into the corpus folder are ingested while the app runs.

A daemon thread in the app process (started once, through ``st.cache_resource``) looks at the folder every
``KB_WATCH_INTERVAL_S`` seconds (0 turns it off). It ingests when the folder differs from what was last ingested
and has been stable for one interval, so a file still being copied is not read half-written. Polling, not
inotify: it works the same on network shares and mounted volumes. Ingestion goes through
``KnowledgeBase.ingest``, whose lock keeps the watcher and the upload page from ingesting at the same time.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kb.records import IngestReport

log = logging.getLogger(__name__)
Snapshot = dict[str, tuple[int, float]]  # path -> (size, mtime)


@dataclass
class WatcherStatus:
    folder: str = ""
    interval_s: float = 0.0
    running: bool = False
    polls: int = 0
    last_poll: float | None = None
    last_ingest: float | None = None
    last_report: IngestReport | None = None
    last_error: str = ""
    history: list[IngestReport] = field(default_factory=list)


class Watcher:
    def __init__(self, kb, interval_s: float | None = None) -> None:
        self.kb = kb
        self.folder: Path = kb.settings.corpus_dir
        self.interval_s = kb.settings.watch_interval_s if interval_s is None else interval_s
        self.status = WatcherStatus(folder=str(self.folder), interval_s=self.interval_s)
        self._baseline: Snapshot | None = None
        self._previous: Snapshot | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what is in the folder -----------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Files ingestion would look at (the same skip rules: hidden, Office lock files, documentation)."""
        if not self.folder.is_dir():
            return {}
        ignore = set(self.kb.settings.ignore_names)
        snap: Snapshot = {}
        root = self.folder.absolute()
        for p in root.rglob("*"):
            rel = p.relative_to(root).parts
            if any(part.startswith((".", "~$")) for part in rel) or p.name in ignore:
                continue
            try:
                st = p.stat()
            except OSError:  # vanished between listing and stat
                continue
            if p.is_file():
                snap[str(p)] = (st.st_size, st.st_mtime)
        return snap

    def registered(self) -> Snapshot:
        """What the registry already accounts for under the folder: indexed paths and refused files."""
        root = self.folder.absolute()
        known: Snapshot = {}
        for path, (_, size, mtime) in self.kb.registry.path_map().items():
            if root in Path(path).parents:
                known[path] = (size, mtime)
        for path in self.kb.registry.failures():
            p = Path(path)
            if root in p.parents and p.exists():
                st = p.stat()
                known[path] = (st.st_size, st.st_mtime)
        return known

    # --- one look ------------------------------------------------------------------------------------------
    def poll_once(self, require_stable: bool = True) -> IngestReport | None:
        """Ingest when the folder changed since the last ingest (and, by default, held still since the last look)."""
        snap = self.snapshot()
        self.status.polls += 1
        self.status.last_poll = time.time()
        if self._baseline is None:
            self._baseline = self.registered()
        stable = snap == self._previous
        self._previous = snap
        if snap == self._baseline or (require_stable and not stable):
            return None
        try:
            report = self.kb.ingest([self.folder])
        except Exception as exc:  # the thread must survive a bad day (disk full, index busy...)
            log.exception("watcher ingest failed")
            self.status.last_error = f"{type(exc).__name__}: {exc}"
            return None
        self._baseline = snap
        self.status.last_error = ""
        self.status.last_ingest = time.time()
        self.status.last_report = report
        self.status.history = [report, *self.status.history][:10]
        return report

    def acknowledge(self, paths: list[Path]) -> None:
        """These files were just ingested by someone else (the upload page): no need to ingest them again."""
        if self._baseline is None:
            return
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            self._baseline[str(p.absolute())] = (st.st_size, st.st_mtime)

    # --- the thread ----------------------------------------------------------------------------------------
    def start(self) -> Watcher:
        if self.interval_s <= 0 or (self._thread and self._thread.is_alive()):
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="kb-drop-folder-watcher", daemon=True)
        self._thread.start()
        self.status.running = True
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        self.status.running = False

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll_once()
            except Exception:
                log.exception("watcher poll failed")
