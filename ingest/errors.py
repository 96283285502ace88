"""The one exception readers raise: its message is what staff read in the ingest report."""


class IngestError(Exception):
    """A file that cannot be ingested, with a human-readable reason."""
