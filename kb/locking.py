"""Serialise calls into objects that are not thread-safe (SQLite connection, embedded Qdrant).

The app answers searches while its watcher thread ingests: each store or registry call holds the lock only for
its own duration, so a search waits at most one upsert batch, never a whole ingest.
"""

from __future__ import annotations

import functools
import threading
from typing import Any


class Synchronized:
    def __init__(self, target: Any, lock: threading.RLock) -> None:
        self._target, self._lock = target, lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = attr(*args, **kwargs)
                # generators (scroll) are drained under the lock so no other call interleaves
                if hasattr(result, "__next__"):
                    return iter(list(result))
                return result

        return locked
