"""Language identification with langdetect, seeded so the same text always gets the same answer."""

from __future__ import annotations

from collections import Counter

from langdetect import DetectorFactory, LangDetectException, detect_langs

DetectorFactory.seed = 0

MIN_CHARS = 40  # below this langdetect guesses (\"Le data management\" → Indonesian)
SAMPLE_CHARS = 2000  # langdetect's accuracy saturates well before this; longer text only costs time


def detect(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability), or ('', 0.0) when the text is too short or has no letters."""
    sample = " ".join(text.split())[:SAMPLE_CHARS]
    if sum(ch.isalpha() for ch in sample) < MIN_CHARS:
        return "", 0.0
    try:
        best = detect_langs(sample)[0]
    except LangDetectException:
        return "", 0.0
    return best.lang, round(best.prob, 4)


def majority(detections: list[tuple[str, float, int]]) -> tuple[str, float]:
    """Document language: the language covering most characters, with its share as confidence."""
    weight: Counter[str] = Counter()
    for lang, prob, size in detections:
        if lang:
            weight[lang] += prob * size
    if not weight:
        return "", 0.0
    lang, w = weight.most_common(1)[0]
    return lang, round(w / sum(weight.values()), 4)
