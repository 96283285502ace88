"""What a question searched: the part of the library it could see, said plainly when there is no answer."""

from __future__ import annotations

import re

from index.sparse import SparseVector, fold, stem_term, stopwords, token_index
from index.store import VectorStore
from kb.records import Hit, SearchFilters

# languages that capitalise every noun: a capital letter there does not mark a name
NOUN_CAPITALISING = {"de", "lb"}
SENTENCE_START = (".", "?", "!", ":", "«", '"', "“", "„", "(")


def name_like(question: str, language: str) -> list[str]:
    """Words that name something: acronyms and mixed case (DiGA, GDHCN, MedMij) anywhere, capitalised words
    after the first (Moldova, Kazakhstan) in languages that do not capitalise every noun."""
    out = []
    for i, m in enumerate(re.finditer(r"\w+", question)):
        word = m.group(0)
        if len(word) < 2 or word.isdigit():
            continue
        mixed = any(c.isupper() for c in word[1:])
        capital = (
            word[0].isupper() and i > 0 and language not in NOUN_CAPITALISING
            and not question[: m.start()].rstrip().endswith(SENTENCE_START)
        )  # fmt: skip
        if mixed or capital:
            out.append(word)
    return out


def unknown_names(store: VectorStore, question: str, language: str) -> list[str]:
    """Names in the question that no passage of the whole library contains (looked up in the BM25 index).

    A question about Moldova or DiGA that the library never mentions must not be answered with a close-sounding
    passage about Malawi or DMPs; saying which names are missing also tells the user what to add. A name counts
    as present in any indexed form: as written, by its stem ("Italian" meets "~italian"), or, for an acronym
    with a genitive or plural "s" ("WHOs", "DHIs"), without it.
    """
    languages = set(store.facets(None, keys=("language",)).get("language", {})) | {language or "en", "en"}
    # the index drops each passage's stopwords: such a word ("Mon" in Mon espace santé, "WHO") is unknown,
    # not missing
    unindexed = frozenset().union(*(stopwords(lang) for lang in languages))
    missing: list[str] = []
    for word in dict.fromkeys(name_like(question, language)):
        forms = {fold(word)}
        if len(word) > 2 and word[-1] == "s" and word[:-1].isupper():
            forms.add(fold(word[:-1]))
        if forms & unindexed:
            continue
        terms = forms | {stem for stem in [stem_term(word, language or "en")] if stem}
        if not any(_indexed(store, term) for term in terms):
            missing.append(word)
    return missing


def _indexed(store: VectorStore, term: str) -> bool:
    probe = SparseVector(indices=[token_index(term)], values=[1.0])
    return bool(store.query(None, probe, None, limit=1, candidates=1, weights=(0.0, 1.0, 0.0)))


def searched(store: VectorStore, filters: SearchFilters | None, hits: list[Hit], query_language: str) -> dict:
    facets = store.facets(filters, keys=("doc_language", "country", "year", "doc_type", "file"))
    years = sorted(int(y) for y in facets.get("year", {}) if str(y).lstrip("-").isdigit())
    return {
        "documents": len(facets.get("file", {})),
        "passages": store.count(filters),
        "languages": sorted(facets.get("doc_language", {})),
        "countries": sorted(facets.get("country", {})),
        "years": [years[0], years[-1]] if years else [],
        "doc_types": sorted(facets.get("doc_type", {})),
        "query_language": query_language,
        "filters": filters.model_dump(exclude_defaults=True) if filters else {},
        "closest": [
            {
                "file": h.file,
                "title": h.title,
                "page": h.page,
                "language": h.language,
                "score": h.score,
                "snippet": h.snippet,
            }
            for h in hits[:3]
        ],
    }
