"""What a question searched: the part of the library it could see, said plainly when there is no answer."""

from __future__ import annotations

from index.store import VectorStore
from kb.records import Hit, SearchFilters


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
