"""Saving a search or comparison by name, and opening a saved one on its page (shared by Search, Compare, Saved)."""

from __future__ import annotations

import streamlit as st

from kb.records import SavedSearch, SearchFilters
from kb.service import KnowledgeBase

PAGES = {"search": ("search", "kb/ui/search_page.py"), "compare": ("compare", "kb/ui/compare_page.py")}


def save_form(
    kb: KnowledgeBase, prefix: str, query: str, filters: SearchFilters | None = None, kind: str = "search",
    countries: list[str] | None = None,
) -> None:  # fmt: skip
    """A name box and a Save button; the Saved searches page then counts what is new for it after each ingest."""
    name = st.text_input("Name", key=f"{prefix}:save-name", placeholder=query[:40])
    if st.button("Save search", key=f"{prefix}:save", type="primary", disabled=not query):
        kept = kb.save_search(name.strip() or query[:60], query, filters, kind=kind, countries=countries)
        st.success(f"Saved as “{kept.name}”. The Saved searches page shows what is new for it after each ingest.")


def open_saved(saved: SavedSearch) -> None:
    """Show a saved search on its own page with its query and filters (the page's widgets start from them)."""
    prefix, page = PAGES[saved.kind]
    for key in [f"{prefix}:compared", f"{prefix}:years", f"{prefix}:memo"]:
        st.session_state.pop(key, None)
    opening: dict = {"text": saved.query, "filters": saved.filters.model_dump()}
    if saved.kind == "compare":
        opening["c"] = saved.countries
    st.session_state[f"{prefix}:opening"] = opening
    st.switch_page(page)
