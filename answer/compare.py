"""One question, several countries: the best evidence the library holds for each, or a plain "no evidence".

Each country is searched on its own, restricted to the passages that discuss it (the ``about`` tag, not the
publisher's country), and its sentences must clear the same bar as an answer: a comparison row that quotes an
off-topic sentence would be worse than an empty one.
"""

from __future__ import annotations

from collections import Counter

from alignment.countries import CountryRecognizer, country_name
from answer.answerer import Answerer, cite_sentence
from answer.evidence import select
from index.store import VectorStore
from kb.records import Comparison, CountryEvidence, SearchFilters, country_code
from kb.settings import Settings

MENTION_BONUS = 0.005  # between two equally close sentences, the one that names the country reads better


class Comparer:
    def __init__(
        self, settings: Settings, answerer: Answerer, store: VectorStore, countries: CountryRecognizer
    ) -> None:
        self.settings, self.answerer, self.store, self.countries = settings, answerer, store, countries

    def compare(
        self, question: str, countries: list[str] | None = None, filters: SearchFilters | None = None,
        every_country: bool = False,
    ) -> Comparison:  # fmt: skip
        """Rows for the chosen countries; without a choice, for the countries the library discusses most
        (``compare_max_countries``), or for every one of them (``every_country``)."""
        s = self.settings
        base = filters or SearchFilters()
        counts = self.store.facets(base.model_copy(update={"about": []}), keys=("about",)).get("about", {})
        discussed = sorted(counts, key=lambda c: (-counts[c], c))
        chosen = [country_code(c) for c in countries or []] or (
            discussed if every_country else discussed[: s.compare_max_countries]
        )
        comparison = Comparison(question=question, filters=base)
        for code in dict.fromkeys(chosen):
            row, language = self._row(question, code, counts.get(code, 0), base)
            comparison.query_language = comparison.query_language or language
            comparison.rows.append(row)
        return comparison

    def _row(self, question: str, code: str, passages: int, base: SearchFilters) -> tuple[CountryEvidence, str]:
        s = self.settings
        row = CountryEvidence(
            country=code, name=country_name(code), region_member=code in self.countries.region_members,
            passages=passages,
        )  # fmt: skip
        if not passages:
            row.note = "No passage in the library discusses this country."
            return row, ""
        result = self.answerer.searcher.search(
            question, base.model_copy(update={"about": [code]}), k=s.compare_passages
        )
        ranked = self.answerer.rank_sentences(question, result.query_language, result.hits, result.query_vector)
        kept_sentences = []
        for sent in ranked:  # a sentence about another country of the same passage is not this country's evidence
            named = self.countries.countries(sent.text)
            if (named and code not in named) or sent.text.lstrip().startswith("#"):  # or a heading
                continue
            if code in named:
                sent.score += MENTION_BONUS
            kept_sentences.append(sent)
        ranked = sorted(kept_sentences, key=lambda sent: -sent.score)
        top = max(ranked, key=lambda sent: sent.similarity, default=None)
        row.best_score = round(top.similarity, 4) if top else 0.0
        if top is None or top.similarity < self.answerer.bar(top, result.query_language):
            row.note = f"{passages} passages discuss this country, but none answers the question closely enough."
            return row, result.query_language
        kept = select(ranked, s.compare_sentences, s.compare_sentences, s.compare_margin, s.answer_redundancy)
        row.found = True
        row.citations = [cite_sentence(n, sent) for n, sent in enumerate(kept, 1)]
        triggers = Counter()
        for sent in kept:
            surface = self.countries.triggers(sent.hit.text).get(code)
            if surface:
                triggers[surface] += 1
        row.mentions = [m for m, _ in triggers.most_common()]
        labels = Counter(label for sent in kept for label in sent.hit.labels)
        row.labels = [label for label, _ in labels.most_common()]
        return row, result.query_language
