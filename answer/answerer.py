"""Question → cited answer. Evidence mode quotes the best sentences; LLM mode writes from numbered passages.

Both modes share the same retrieval, the same abstention rule (the best question–sentence match must clear
``abstain_threshold``, chosen on the eval sets) and the same claim check, so an answer never says more than
its cited pages do.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property

import numpy as np

from answer.answerability import AnswerabilityModel, features
from answer.claims import Claim, check_claims
from answer.coverage import searched, unknown_names
from answer.evidence import Sentence, identifiers, naming, score_sentences, select, split_sentences
from answer.llm import build_llm, generate
from answer.prompt import PromptPassage, build_prompt, parse_answer
from index.embedder import Embedder
from index.search import Searcher, SearchResult
from index.sentences import SentenceVectors
from index.store import VectorStore
from kb.records import Answer, AnswerOutcome, Citation, Hit, SearchFilters
from kb.settings import Settings

MODES = ("evidence", "llm")


class Answerer:
    def __init__(self, settings: Settings, searcher: Searcher, store: VectorStore, embedder: Embedder) -> None:
        self.settings, self.searcher, self.store, self.embedder = settings, searcher, store, embedder
        # Each candidate sentence embedded on its own: a quote must answer by itself, and the index's sentence
        # vectors (late-chunked, they carry their passage's context) separate answerable from unanswerable
        # questions less well (kb eval answers: 58% vs 84% abstention at the same false-abstention rate).
        self.sentences = SentenceVectors(embedder, settings.sentence_cache)
        self._llm = None

    @property
    def llm(self):
        if self._llm is None:
            self._llm = build_llm(self.settings)
        return self._llm

    def ask(
        self, question: str, filters: SearchFilters | None = None, mode: str | None = None, strict: bool | None = None
    ) -> Answer:
        """``strict``: answer only with sentences the answerability model says answer (default: the setting)."""
        s = self.settings
        model = self.answerability if (s.answerability_gate if strict is None else strict) else None
        mode = mode or s.answer_mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        result, ranked, missing = self.gather(question, filters)
        hits = result.hits
        coverage = searched(self.store, filters, hits, result.query_language)
        # by meaning alone: shared words with an off-topic passage must not make it look like evidence
        top = max(ranked, key=lambda sent: sent.similarity, default=None)
        best = top.similarity if top else 0.0
        bar = self.bar(top, result.query_language) + (s.abstain_unknown_name_margin if missing else 0.0)
        # a keyword-style lookup of a code (DHI 1.4.1, dm+d) is answered by the sentences that name it, unless
        # it also names something the library never mentions (the code may then belong to something else)
        lookup = result.keyword and not missing
        codes = identifiers(question) if lookup else []
        named = naming(ranked, codes)
        coverage |= {
            "best_evidence_score": round(best, 4), "abstain_below": round(bar, 4), "not_in_library": missing,
            "codes_quoted": codes if named else [],
        }  # fmt: skip
        on_topic = best >= bar
        if model is None or named:  # a code lookup quotes the sentences naming it
            if not on_topic and not named:
                return self.abstain(question, mode, coverage, hits, self._nothing(missing))
            answering, confidence = named or ranked, 1.0 if named else best
        else:
            candidates = self.by_answerability(question, result.query_language, ranked, len(missing))
            confidence = candidates[0].score if candidates else 0.0
            answering = [sent for sent in candidates if sent.score >= model.threshold]
            if not on_topic or (lookup and codes):  # off the library's topics, or a code no sentence names
                answering = []
            coverage |= {"confidence": round(confidence, 4), "answer_below": round(model.threshold, 4)}
            if not answering:
                if missing or not on_topic:
                    return self.abstain(question, mode, coverage, hits, self._nothing(missing))
                return self.closest(question, mode, candidates[0], coverage, hits, confidence, model.threshold)
        if mode == "llm":
            answer = self.generated(question, result.query_language, hits, ranked, coverage)
        else:
            answer = self.evidence(question, answering, coverage, hits, answerable_only=model is not None)
        if not answer.abstained:
            answer.confidence = round(confidence, 4)
            answer.why = "A quoted sentence answers the question" + (
                f" (confidence {confidence:.2f})." if model is not None and not named else "."
            )
        return answer

    def gather(
        self, question: str, filters: SearchFilters | None = None
    ) -> tuple[SearchResult, list[Sentence], list[str]]:
        """The passages, their sentences scored against the question, and the question's names that no passage
        of the library contains: what every answer (and the answerability fit) reads."""
        result = self.searcher.search(question, filters, k=self.settings.answer_passages)
        ranked = self.rank_sentences(question, result.query_language, result.hits, result.query_vector)
        return result, ranked, unknown_names(self.store, question, result.query_language)

    @cached_property
    def answerability(self) -> AnswerabilityModel:
        """The fitted answerability model (loaded on first use)."""
        return AnswerabilityModel.load(self.settings.answerability_model_file)

    @property
    def model(self) -> AnswerabilityModel | None:
        """The answerability model when the gate is on by default (KB_ANSWERABILITY_GATE), else None."""
        return self.answerability if self.settings.answerability_gate else None

    def by_answerability(self, question: str, language: str, ranked: list[Sentence], unknown: int) -> list[Sentence]:
        """The candidate sentences, each scored with the probability that it answers, most probable first."""
        candidates, rows = features(question, language, ranked, unknown, self.settings.answerability_candidates)
        for sent, p in zip(candidates, self.answerability.probabilities(rows), strict=True):
            sent.score = float(p)
        return sorted(candidates, key=lambda sent: -sent.score)

    @staticmethod
    def _nothing(missing: list[str]) -> str:
        reason = "Not in the library: no passage is close enough to the question."
        if missing:
            reason = f"Not in the library. No passage mentions {', '.join(missing)}."
        return reason

    def bar(self, top: Sentence | None, query_language: str) -> float:
        """The similarity the best sentence must reach to count as evidence (a little lower across languages)."""
        cross = top is not None and bool(query_language) and top.hit.language != query_language
        return self.settings.abstain_threshold - (self.settings.abstain_cross_lingual_offset if cross else 0.0)

    def rank_sentences(
        self, question: str, language: str, hits: list[Hit], query_vector: list[float] | None = None
    ) -> list[Sentence]:
        sentences = split_sentences(hits, self.settings.answer_min_sentence_chars)
        q_vec = (
            np.asarray(query_vector, dtype=np.float32) if query_vector else self.embedder.encode_queries([question])[0]
        )
        return score_sentences(
            question,
            language,
            q_vec,
            sentences,
            self.sentences,
            self.settings.answer_lexical_weight,
            self.settings.answer_rank_weight,
        )

    # --- evidence mode -------------------------------------------------------------------------------------
    def evidence(
        self, question: str, ranked: list[Sentence], coverage: dict, hits: list[Hit], answerable_only: bool = False
    ) -> Answer:
        s = self.settings
        margin = 1.0 if answerable_only else s.answer_margin  # already only sentences that answer
        chosen = select(ranked, s.answer_max_sentences, s.answer_per_document, margin, s.answer_redundancy)
        groups: dict[str, list[Sentence]] = {}
        for sent in chosen:  # by document, documents in order of their best sentence
            groups.setdefault(sent.hit.doc_id, []).append(sent)
        citations: list[Citation] = []
        numbers: dict[tuple[str, int], int] = {}
        lines, claims, passages = [], [], []
        for sentences in groups.values():
            head = sentences[0].hit
            lines.append(f"**{head.title or head.file}** ({head.publisher or 'n.p.'}, {head.year or 'n.d.'})")
            for sent in sorted(sentences, key=lambda x: (x.page, x.start)):
                key = (sent.hit.doc_id, sent.page)
                if key not in numbers:
                    numbers[key] = len(numbers) + 1
                    citations.append(cite_sentence(numbers[key], sent))
                    passages.append(sent.hit.text)
                else:
                    citations[numbers[key] - 1].quote += " " + sent.text
                n = numbers[key]
                lines.append(f"- “{sent.text}” [{n}] ({sent.hit.language or '?'})")
                claims.append(Claim(text=sent.text, cited=[n]))
        checked = check_claims(claims, passages, self.embedder, "en", s.claim_min_similarity, s.claim_min_overlap)
        dropped = sum(not c.supported for c in checked)
        return Answer(
            question=question, answer="\n".join(lines), abstained=False, mode="evidence", citations=citations,
            dropped_claims=dropped, objectives=objectives([sent.hit for sent in chosen]), coverage=coverage,
            evidence=hits,
        )  # fmt: skip

    # --- generated mode ------------------------------------------------------------------------------------
    def generated(
        self, question: str, language: str, hits: list[Hit], ranked: list[Sentence], coverage: dict
    ) -> Answer:
        s = self.settings
        given = hits[: s.llm_passages]
        best_sentence = {}
        for sent in ranked:  # the best sentence of each passage gives its citation page and quote
            best_sentence.setdefault(sent.hit.chunk_id, sent)
        passages = [
            PromptPassage(i + 1, f"{h.title or h.file}, p. {h.page}", h.language, h.text) for i, h in enumerate(given)
        ]
        prompt = build_prompt(question, language, passages, s.answer_max_sentences)
        reply = generate(self.llm, prompt)
        parsed = parse_answer(reply, len(given))
        coverage |= {"invented_citations_removed": parsed.invented_citations, "raw_reply": reply}
        if parsed.refused:
            return self.abstain(question, "llm", coverage, hits, "The model found no answer in the passages.")
        checked = check_claims(
            parsed.claims, [h.text for h in given], self.embedder, language or "en",
            s.claim_min_similarity, s.claim_min_overlap,
        )  # fmt: skip
        kept = [c for c in checked if c.supported]
        dropped = len(checked) - len(kept)
        if not kept:
            answer = self.abstain(question, "llm", coverage, hits, "No sentence of the generated answer was "
                                  "supported by the passages it cited.")  # fmt: skip
            answer.dropped_claims = dropped
            return answer
        renumber: dict[int, int] = {}
        for claim in kept:
            for n in claim.cited:
                renumber.setdefault(n, len(renumber) + 1)
        citations = []
        for old, new in renumber.items():
            hit = given[old - 1]
            sent = best_sentence.get(hit.chunk_id)
            citations.append(
                Citation(
                    n=new,
                    doc_id=hit.doc_id,
                    file=hit.file,
                    title=hit.title,
                    page=sent.page if sent else hit.page,
                    quote=sent.text if sent else hit.snippet,
                    language=hit.language,
                    publisher=hit.publisher,
                    year=hit.year,
                    chunk_id=hit.chunk_id,
                )
            )
        text = " ".join(f"{c.text} " + "".join(f"[{renumber[n]}]" for n in c.cited) for c in kept)
        return Answer(
            question=question, answer=text.strip(), abstained=False, mode="llm", citations=citations,
            dropped_claims=dropped, objectives=objectives([given[n - 1] for n in renumber]), coverage=coverage,
            evidence=hits,
        )  # fmt: skip

    def abstain(self, question: str, mode: str, coverage: dict, hits: list[Hit], reason: str) -> Answer:
        c = coverage
        years = f"{c['years'][0]}–{c['years'][1]}" if c.get("years") else "no dated documents"
        scope = (
            f"{reason} Searched {c['documents']} documents ({c['passages']} passages) in "
            f"{', '.join(c['languages']) or 'no languages'}; countries {', '.join(c['countries']) or 'none'}; "
            f"years {years}."
        )
        if hits:
            scope += " The closest passages are listed below; none answers the question closely enough."
        return Answer(question=question, answer=scope, abstained=True, mode=mode, coverage=coverage, evidence=hits[:3],
                      outcome=AnswerOutcome.NOT_IN_LIBRARY, why=reason)  # fmt: skip

    def closest(
        self, question: str, mode: str, best: Sentence, coverage: dict, hits: list[Hit], confidence: float,
        threshold: float,
    ) -> Answer:  # fmt: skip
        """On-topic passages, but no sentence that answers: the most probable one, said to be only that."""
        why = (
            "The library discusses this topic, but no sentence answers the question "
            f"(confidence {confidence:.2f}, an answer needs {threshold:.2f})."
        )
        text = (
            f"{why} The closest evidence, which may not answer your question: “{best.text}” [1] "
            f"({best.hit.title or best.hit.file}, p. {best.page})."
        )
        return Answer(question=question, answer=text, abstained=True, mode=mode, coverage=coverage,
                      evidence=hits[:3], citations=[cite_sentence(1, best)], outcome=AnswerOutcome.CLOSEST,
                      confidence=round(confidence, 4), why=why)  # fmt: skip


def cite_sentence(n: int, sent: Sentence) -> Citation:
    h = sent.hit
    return Citation(n=n, doc_id=h.doc_id, file=h.file, title=h.title, page=sent.page, quote=sent.text,
                    language=h.language, publisher=h.publisher, year=h.year, chunk_id=h.chunk_id)  # fmt: skip


def objectives(hits: list[Hit], min_share: float = 0.34) -> list[str]:
    """Framework labels that a good share of the answer's passages carry, most frequent first."""
    if not hits:
        return []
    counts = Counter(label for h in hits for label in h.labels)
    return [label for label, n in counts.most_common() if n / len(hits) >= min_share]
