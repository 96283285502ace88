"""Answerability rules: the answer type a question expects, whether a sentence carries it, and key phrases."""

from __future__ import annotations

import pytest

from answer.answerability import carries, expected_type, key_phrases, phrase_share


@pytest.mark.parametrize(
    ("question", "language", "kind"),
    [
        ("How many Member States had a national eHealth strategy?", "en", "count"),
        ("Combien de professionnels sont inscrits au RPPS ?", "fr", "count"),
        ("Wie viele Kommunen gehören zur Region?", "de", "count"),
        ("Hvor mange kommuner deltar i samarbeidet?", "no", "count"),
        ("How many billion euros of the PNRR go to the telemedicine platform?", "en", "amount"),
        ("Quel est le budget du programme Ségur numérique ?", "fr", "amount"),
        ("What share of hospitals reported a ransomware attack?", "en", "percent"),
        ("Hvor stor andel av innbyggerne bruker helsenorge?", "no", "percent"),
        ("In which year was the strategy endorsed?", "en", "date"),
        ("Wann tritt die Verordnung in Kraft?", "de", "date"),
        ("¿Cuándo se publicó la guía técnica?", "es", "date"),
        ("How long may a data permit remain valid?", "en", "duration"),
        ("Combien de temps un permis d'accès peut-il être valable ?", "fr", "duration"),
        ("Per quanto tempo sono conservati i dati?", "it", "duration"),
        ("Who registers social workers in France?", "en", "who"),
        ("Quale ente gestisce la piattaforma nazionale?", "it", "who"),
        ("What are the principles of the strategy?", "en", None),
        ("Comment la stratégie mondiale de l'OMS définit-elle la santé numérique ?", "fr", None),
    ],
)
def test_question_answer_type(question: str, language: str, kind: str | None) -> None:
    assert expected_type(question, language) == kind


@pytest.mark.parametrize(
    ("sentence", "kind", "question", "expected"),
    [
        ("More than 120 Member States had developed such a strategy.", "count", "How many Member States?", True),
        ("Member States developed strategies at different speeds.", "count", "How many Member States?", False),
        ("Teleconsultations grew strongly in 2022.", "count", "How many teleconsultations in 2022?", False),
        ("Twelve principles guide the recommendation.", "count", "How many principles?", True),
        ("The platform receives EUR 1.5 billion from the plan.", "amount", "How much money?", True),
        ("The platform is financed by the plan.", "amount", "How much money?", False),
        ("Some 38 % of respondents used the portal.", "percent", "What share used it?", True),
        ("Most respondents used the portal often.", "percent", "What share used it?", False),
        ("The regulation applies from 26 March 2027.", "date", "When does it apply?", True),
        ("The regulation applies after a transition period.", "date", "When does it apply?", False),
        ("That duration shall not exceed 10 years.", "duration", "How long is it valid?", True),
        ("The permit is valid for a limited duration.", "duration", "How long is it valid?", False),
        ("The register is kept by the Agence du Numérique en Santé.", "who", "Who keeps the register?", True),
        ("the register is kept up to date every week.", "who", "Who keeps the register?", False),
    ],
)
def test_sentence_carries_the_answer_type(sentence: str, kind: str, question: str, expected: bool) -> None:
    assert carries(sentence, kind, question) is expected


def test_key_phrases_are_names_codes_and_years_not_loose_words() -> None:
    assert key_phrases("Wann tritt die Strategie Gemeinsam Digital in Kraft?", "de") == ["gemeinsam digital"]
    assert key_phrases("What does Data Saves Lives say about the NHS app?", "en") == ["nhs", "data saves lives"]
    phrases = key_phrases("What does the regional action plan 2023–2030 ask of Member States?", "en")
    assert {"2023", "2030"} <= set(phrases)
    assert "action plan" not in phrases  # ordinary words are matched by meaning, not as phrases


def test_phrases_match_as_whole_phrases_across_typography() -> None:
    phrases = ["gemeinsam digital", "2023"]
    assert phrase_share(phrases, "Die Strategie „Gemeinsam  Digital“ von 2023") == 1.0
    assert phrase_share(phrases, "Gemeinsam arbeiten wir digital seit 20234") == 0.0  # loose words do not count
    assert phrase_share([], "anything") == 0.0
