"""Ingestion: files → pages → chunks, with OCR, language detection and metadata."""
