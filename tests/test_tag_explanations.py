"""Framework tags read in their document's light, explained by the sentence that triggered them, and reviewed by
staff: a confirmed tag survives every re-tag, a rejected one never comes back."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from alignment.context import PassageContext, document_contexts
from alignment.tagger import Tagger
from index.embedder import Embedder
from kb.records import SearchFilters, TagVerdict
from kb.service import KnowledgeBase
from kb.settings import Settings
from tests.conftest import SMALL_DOCS

# says what a working group does, not what about: its section heading says which objective it serves
PASSAGE = (
    "The national working group meets every quarter. It agrees on the common formats that every supplier must use "
    "and reports its progress to the ministry."
)
STANDARDS = PassageContext(
    title="National digital health strategy",
    language="en",
    heading="Interoperability standards: HL7 FHIR profiles and SNOMED CT terminology",
)
WORKFORCE = PassageContext(
    title="National digital health strategy",
    language="en",
    heading="Digital skills and training of the health workforce",
)


@pytest.fixture(scope="module")
def tagger(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Tagger:
    return Tagger(Settings(home=tmp_path_factory.mktemp("tagger")), embedder)


def test_a_passage_is_read_in_the_light_of_its_section(tagger: Tagger) -> None:
    vector = tagger.embedder.encode_passages([PASSAGE])
    [standards], [workforce] = (tagger.tag_vectors(vector, [PASSAGE], contexts=[c]) for c in (STANDARDS, WORKFORCE))
    assert "WG3" in standards and "WG3" not in workforce
    assert standards != workforce
    _, probs_a = tagger.probabilities(vector, [PASSAGE], contexts=[STANDARDS])
    _, probs_b = tagger.probabilities(vector, [PASSAGE], contexts=[WORKFORCE])
    wg3 = tagger.label_ids.index("WG3")
    assert probs_a[0, wg3] > probs_b[0, wg3] + 0.1


def test_document_contexts_name_title_heading_and_language() -> None:
    passages = [{"text": "…", "heading": f"Section {i}", "language": "fr", "title": "Stored title"} for i in range(2)]
    _, second = document_contexts(passages, "Doctrine du numérique en santé")
    assert (second.title, second.heading, second.language) == ("Doctrine du numérique en santé", "Section 1", "fr")
    assert second.section == "Doctrine du numérique en santé | Section 1"
    assert document_contexts(passages)[0].title == "Stored title"
    assert PassageContext(heading="Standards").section == "Standards"


def test_kb_tag_json_gives_each_label_the_sentence_that_triggered_it(
    make_kb: Callable[..., KnowledgeBase], run_cli
) -> None:
    text = (
        "The ministry published its annual report in May. All hospitals shall exchange discharge letters and "
        "laboratory results in HL7 FHIR, coded with SNOMED CT, so that every system can read them."
    )
    result = run_cli(make_kb(), "tag", text, "--json")
    assert result.exit_code == 0, result.output
    labels = json.loads(result.stdout)["labels"]
    wg3 = next(lab for lab in labels if lab["id"] == "WG3")
    assert wg3["trigger"].startswith("All hospitals shall exchange") and wg3["trigger"] in text
    assert all(lab["trigger"] in text and 0 < lab["score"] <= 1 for lab in labels)


def test_stored_tags_carry_their_trigger_sentences_to_search_hits(tagged_library: KnowledgeBase) -> None:
    hits = tagged_library.search("interoperabilità dei dati sanitari", SearchFilters(objectives=["WG3"]), k=5).hits
    assert hits
    for hit in hits:
        assert set(hit.label_triggers) == set(hit.labels)
        assert all(sentence and sentence in hit.text for sentence in hit.label_triggers.values())


def test_staff_verdicts_survive_a_retag_and_a_reindex(tagged_library: KnowledgeBase) -> None:
    kb = tagged_library
    doc = next(d for d in kb.documents() if d.file == SMALL_DOCS["it"])
    passages = kb.document_passages(doc.doc_id)
    tagged = next(p for p in passages if p["labels"])
    wrong = tagged["labels"][0]
    missing = next(lab for lab in kb.tagger.label_ids if lab not in tagged["labels"])

    after = kb.review_tag(doc.doc_id, tagged["chunk_id"], wrong, TagVerdict.REJECTED)
    assert wrong not in after["labels"] and after["label_reviews"] == {wrong: "rejected"}
    after = kb.review_tag(doc.doc_id, tagged["chunk_id"], missing, TagVerdict.CONFIRMED)
    assert missing in after["labels"] and after["label_scores"][missing] == 1.0

    assert kb.retag(force=True) > 0
    [again] = [p for p in kb.document_passages(doc.doc_id) if p["chunk_id"] == tagged["chunk_id"]]
    assert wrong not in again["labels"] and missing in again["labels"]
    assert again["label_reviews"] == {wrong: "rejected", missing: "confirmed"}
    others = [p for p in kb.document_passages(doc.doc_id) if p["chunk_id"] != tagged["chunk_id"]]
    assert all(not p["label_reviews"] for p in others)

    kb.registry.set_index_fingerprint(doc.doc_id, "another-model")  # re-embedded: same passage ids, verdicts apply
    report = kb.ingest()
    assert "updated" in {f.status.value for f in report.files}
    [reindexed] = [p for p in kb.document_passages(doc.doc_id) if p["chunk_id"] == tagged["chunk_id"]]
    assert wrong not in reindexed["labels"] and missing in reindexed["labels"]

    kb.review_tag(doc.doc_id, tagged["chunk_id"], wrong, None)  # withdrawn: the tagger decides again
    [undone] = [p for p in kb.document_passages(doc.doc_id) if p["chunk_id"] == tagged["chunk_id"]]
    assert wrong in undone["labels"] and undone["label_reviews"] == {missing: "confirmed"}


def test_a_review_of_an_unknown_label_or_passage_is_refused(tagged_library: KnowledgeBase) -> None:
    doc = tagged_library.documents()[0]
    chunk = tagged_library.document_passages(doc.doc_id)[0]["chunk_id"]
    with pytest.raises(ValueError, match="unknown framework label"):
        tagged_library.review_tag(doc.doc_id, chunk, "WG9", TagVerdict.CONFIRMED)
    with pytest.raises(KeyError, match="no passage"):
        tagged_library.review_tag(doc.doc_id, "not-a-passage", "WG3", TagVerdict.CONFIRMED)


def test_kb_review_tag_from_the_command_line(tagged_library: KnowledgeBase, run_cli) -> None:
    doc = next(d for d in tagged_library.documents() if d.file == SMALL_DOCS["de"])
    tagged = next(p for p in tagged_library.document_passages(doc.doc_id) if p["labels"])
    label = tagged["labels"][0]
    result = run_cli(tagged_library, "review-tag", doc.doc_id, tagged["chunk_id"], label, "--verdict", "rejected",
                     "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    tags = json.loads(result.stdout)
    assert label not in tags["labels"] and tags["label_reviews"] == {label: "rejected"}
    bad = run_cli(tagged_library, "review-tag", doc.doc_id, tagged["chunk_id"], label, "--verdict", "maybe")
    assert bad.exit_code == 2 and "confirmed, rejected or clear" in bad.output
    missing = run_cli(tagged_library, "review-tag", doc.doc_id, "no-such-passage", label)
    assert missing.exit_code == 2 and "no passage" in missing.output
