"""Language detection is deterministic, per chunk and per document."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingest.language import detect, majority

SAMPLES = {
    "en": "The national digital health strategy sets out how patients will access their records online by 2025.",
    "fr": "La stratégie nationale de santé numérique prévoit que les patients accèdent à leur dossier en ligne.",
    "de": "Die nationale Digitalisierungsstrategie legt fest, wie Patientinnen ihre Gesundheitsdaten abrufen können.",
    "es": "La estrategia nacional de salud digital establece cómo los pacientes accederán a su historia clínica.",
    "it": "La strategia nazionale di sanità digitale stabilisce come i pazienti accederanno al fascicolo sanitario.",
    "no": "Den nasjonale strategien for digital helse beskriver hvordan innbyggerne får tilgang til journalen sin.",
}


@pytest.mark.parametrize(("lang", "text"), SAMPLES.items())
def test_detects_the_regions_languages(lang: str, text: str) -> None:
    code, confidence = detect(text)
    assert code == lang and confidence > 0.8


def test_detection_is_the_same_in_every_process() -> None:
    text = "Le data management et la gouvernance des données de santé"
    script = f"from ingest.language import detect; print(detect({text!r}))"
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True).stdout for _ in range(3)}
    assert len(runs) == 1 and runs.pop().strip() == str(detect(text))


def test_short_text_gets_no_language_rather_than_a_guess() -> None:
    assert detect("Annex 2") == ("", 0.0)


def test_document_language_is_the_weighted_majority() -> None:
    lang, share = majority([("fr", 0.99, 900), ("en", 0.99, 100), ("", 0.0, 50)])
    assert lang == "fr" and share == pytest.approx(0.9, abs=0.01)
