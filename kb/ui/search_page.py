"""Search: one box, sidebar filters with counts, result cards that open their page; the URL carries it all."""

from __future__ import annotations

import streamlit as st

from kb.export import bibtex, cited_documents, hits_csv, ris
from kb.ui import common as ui
from kb.ui.saving import save_form

PREFIX = "search"

kb = ui.get_kb()
names = ui.label_names(kb)
docs = kb.documents()
version = ui.library_version(docs)
ui.seed_state(PREFIX)

st.title("Search the evidence")
query = st.text_input(
    "Search the library",
    key=f"{PREFIX}:text",
    placeholder="Any language: interoperability of health records · télémédecine · Pseudonymisierung · opt-out",
    help="Searches by meaning and by words at once; a question in one language finds passages in the others.",
)
filters = ui.state_filters(PREFIX, docs)

result = None
if query.strip():
    memo_key = (query.strip(), filters.model_dump_json(), version)
    memo = st.session_state.get(f"{PREFIX}:memo")
    if memo and memo[0] == memo_key:
        result = memo[1]
    else:
        with st.spinner("Searching…"):
            result = kb.search(query, filters)
        st.session_state[f"{PREFIX}:memo"] = (memo_key, result)
        ui.close_view(PREFIX)  # a page opened from the previous results

ui.filters_sidebar(PREFIX, docs, names, result.facets if result else None)
ui.publish_state(PREFIX, query.strip(), filters)

indexed = [d for d in docs if d.status == "indexed"]
if not indexed:
    st.info("The library is empty. Add documents on the **Add documents** page, or copy files into the drop folder.")
elif result is None:
    languages = sorted({d.meta.language for d in indexed if d.meta.language})
    countries = sorted({d.meta.country for d in indexed if d.meta.country})
    st.caption(
        f"{len(indexed)} documents · {sum(d.chunks for d in indexed)} passages · languages {', '.join(languages)}"
        + (f" · countries {', '.join(countries)}" if countries else "")
    )
elif not result.hits:
    hint = " under these filters; try clearing some" if not filters.is_empty() else ""
    st.warning(f"No passages found for “{query.strip()}”{hint}.")
else:
    head, *buttons = st.columns([3, 1, 1, 1, 1], vertical_alignment="center")
    language = f" · query language {result.query_language}" if result.query_language else ""
    n_docs = len({h.doc_id for h in result.hits})
    head.caption(f"{len(result.hits)} passages from {n_docs} document{'s' if n_docs != 1 else ''}{language}")
    found = cited_documents([h.doc_id for h in result.hits], docs)
    buttons[0].download_button(
        "CSV",
        hits_csv(result.hits),
        file_name="search-results.csv",
        mime="text/csv",
        key=f"{PREFIX}:csv",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        help="The hits with their pages, scores, objectives and text.",
    )
    buttons[1].download_button(
        "BibTeX",
        bibtex(found),
        file_name="search-results.bib",
        mime="application/x-bibtex",
        key=f"{PREFIX}:bib",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        help="The documents these passages come from.",
    )
    buttons[2].download_button(
        "RIS",
        ris(found),
        file_name="search-results.ris",
        mime="application/x-research-info-systems",
        key=f"{PREFIX}:ris",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        help="The documents these passages come from.",
    )
    with buttons[3].popover("Save", icon=":material/bookmark_add:", width="stretch"):
        save_form(kb, PREFIX, query.strip(), filters)
    for n, hit in enumerate(result.hits, 1):
        ui.hit_card(hit, n, names, PREFIX)
    ui.show_view(kb, PREFIX)
