"""Would language-centring the answer's sentence scorer put its best sentence on an answering page more often?

For each answerable question the default search gives the passages, and their sentences are scored as the
answerer scores them (question–sentence cosine, plus the lexical and rank terms); the same sentences are scored
again with each sentence vector centred by its language's offset (passage-space, sentence-space, or half the
passage offset). A question counts when the top sentence (or one of the top three) is on a gold page or quotes
the gold answer. Tuning questions (corpus + same-fact) and the held-apart questions are reported side by side:

    python -m eval.sentence_centring --home DIR   # DIR: a library holding the shared corpus, not centred
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from eval.retrieval import (
    CORPUS_JUDGMENTS,
    CORPUS_QUESTIONS,
    HELDOUT_QUESTIONS,
    SAMEFACT_QUESTIONS,
    Question,
    gold_for,
    read_questions,
)
from index.centring import PASSAGE, SENTENCE, estimate, unit
from index.recentre import document_means
from kb.records import SearchFilters
from kb.service import KnowledgeBase
from kb.settings import Settings

VARIANTS = ("as embedded", "centred (passage offsets)", "centred (sentence offsets)", "half passage offset")
TOP_SHORTLIST = 3


def library_offsets(kb: KnowledgeBase) -> dict[tuple[str, str], np.ndarray]:
    """The offsets the library would be centred with, estimated from its vectors as embedded."""
    parts = []
    for doc in kb.documents():
        points = list(kb.store.stored_points(SearchFilters(doc_ids=[doc.doc_id])))
        if points:
            parts += document_means(doc.doc_id, points)
    s = kb.settings
    return estimate(parts, s.centring_prior_documents, s.centring_full_weight_passages)


def question_rows(kb: KnowledgeBase, q: Question, offsets: dict) -> dict[str, tuple[bool, bool]] | None:
    """(top sentence on a gold page, one of the top three is) for each variant."""
    answerer, s = kb.answerer, kb.settings
    result, ranked, _ = answerer.gather(q.question)
    if not ranked:
        return None
    hits = list({x.hit.chunk_id: x.hit for x in ranked}.values())
    by_span = {}
    for hit, (spans, vecs) in zip(hits, answerer.sentences.get([(h.chunk_id, h.text) for h in hits]), strict=True):
        by_span |= {(hit.chunk_id, a, b): v for (a, b), v in zip(spans, vecs, strict=True)}
    raw = np.array([by_span[(x.hit.chunk_id, *x.span)] for x in ranked])
    zero = np.zeros(raw.shape[1], dtype=np.float32)
    passage = np.array([offsets.get((PASSAGE, x.hit.language or ""), zero) for x in ranked])
    sentence = np.array([offsets.get((SENTENCE, x.hit.language or ""), zero) for x in ranked])
    query = np.asarray(result.query_vector, dtype=np.float32)
    extra = np.array([s.answer_lexical_weight * x.lexical + s.answer_rank_weight / (x.rank + 1) for x in ranked])
    vectors = (raw, unit(raw - passage)[0], unit(raw - sentence)[0], unit(raw - 0.5 * passage)[0])
    gold = np.array([gold_for(q, x.hit.file, x.page, x.text) for x in ranked])
    out = {}
    for name, vecs in zip(VARIANTS, vectors, strict=True):
        order = np.argsort(-(vecs @ query + extra), kind="stable")
        out[name] = (bool(gold[order[0]]), bool(gold[order[:TOP_SHORTLIST]].any()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, help="a KB home holding the shared corpus (not centred)")
    args = parser.parse_args()
    kb = KnowledgeBase(Settings(home=args.home))
    try:
        offsets = library_offsets(kb)
        held = [q for q in read_questions(HELDOUT_QUESTIONS) if q.answers]
        tuning = read_questions(CORPUS_QUESTIONS, CORPUS_JUDGMENTS) + read_questions(SAMEFACT_QUESTIONS,
                                                                                     CORPUS_JUDGMENTS)  # fmt: skip
        for name, questions in (("tuning", tuning), ("held-apart", held)):
            scores: dict[str, dict[str, list[tuple[bool, bool]]]] = defaultdict(lambda: defaultdict(list))
            for q in questions:
                rows = question_rows(kb, q, offsets)
                for variant, row in (rows or {}).items():
                    for group in ("all", "cross-lingual") if q.type == "cross-lingual" else ("all",):
                        scores[variant][group].append(row)
            print(f"{name}: top sentence on a gold page / one of the top {TOP_SHORTLIST} is")
            for variant in VARIANTS:
                cells = [f"{g} {np.mean([a for a, _ in r]):.3f} / {np.mean([b for _, b in r]):.3f} (n {len(r)})"
                         for g, r in scores[variant].items()]  # fmt: skip
                print(f"  {variant:28s} " + "   ".join(cells))
    finally:
        kb.close()


if __name__ == "__main__":
    main()
