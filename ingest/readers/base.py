"""The reader interface: a file in, 1-based pages out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from kb.records import Page
from kb.settings import Settings


class Reader(ABC):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded_metadata: dict[str, str] = {}

    @abstractmethod
    def read(self, path: Path) -> list[Page]:
        """Return the file's pages in order; raise IngestError with a reason staff can act on."""
