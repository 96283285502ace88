"""OCR for pages without a usable text layer, in the page's language.

Only image-only pages go through tesseract (10–15 s a page on 2 cores); when tesseract is missing the page is
marked ``needs_ocr`` and reported, never silently dropped.
"""

from __future__ import annotations

import logging
import shutil
from functools import lru_cache

from PIL import Image

log = logging.getLogger(__name__)

TESSERACT_LANGS = {
    "en": "eng", "fr": "fra", "de": "deu", "es": "spa", "it": "ita", "no": "nor", "nb": "nor",
    "pl": "pol", "nl": "nld", "pt": "por", "da": "dan", "sv": "swe", "fi": "fin", "ro": "ron",
}  # fmt: skip


@lru_cache(maxsize=1)
def available_languages() -> frozenset[str]:
    """Tesseract language packs installed here (empty when tesseract is absent)."""
    if shutil.which("tesseract") is None:
        return frozenset()
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except Exception:
        return frozenset()


def ocr_available() -> bool:
    return bool(available_languages())


def tesseract_lang(languages: list[str]) -> str:
    """The tesseract language string for ISO codes, falling back to every installed regional pack."""
    installed = available_languages()
    wanted = [TESSERACT_LANGS[c] for c in languages if TESSERACT_LANGS.get(c) in installed]
    if not wanted:
        wanted = [t for t in dict.fromkeys(TESSERACT_LANGS.values()) if t in installed][:4] or ["eng"]
    return "+".join(dict.fromkeys(wanted))


def ocr_image(image: Image.Image, languages: list[str], timeout_s: int) -> str:
    """Text of one rendered page; raises RuntimeError on timeout or tesseract failure."""
    import pytesseract

    try:
        return pytesseract.image_to_string(image, lang=tesseract_lang(languages), timeout=timeout_s)
    except RuntimeError as exc:  # pytesseract raises RuntimeError on timeout
        raise RuntimeError(f"OCR timed out after {timeout_s} s") from exc
    except pytesseract.TesseractError as exc:
        raise RuntimeError(f"OCR failed: {exc}") from exc
