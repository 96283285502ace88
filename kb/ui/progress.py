"""The banner every page shows while the library is being built or updated (by the watcher, an upload, a start)."""

from __future__ import annotations

import streamlit as st

from kb.service import KnowledgeBase

REFRESH_S = 3.0  # how often the banner looks; it only reads the service's progress record


@st.fragment(run_every=REFRESH_S)
def ingest_banner(kb: KnowledgeBase) -> None:
    """Files, pages, passages and OCR pages so far. When an ingest ends the page is not rerun under the user's
    hands (an open popover or a half-typed name would be lost): the banner offers the refresh instead."""
    state = kb.ingest_progress
    key = "ingest-banner:last"
    if state.running:
        st.session_state[key] = "running"
        done = state.files_done / state.files_total if state.files_total else 0.0
        current = f" · now {state.stage} {state.current_file}" if state.current_file else ""
        st.progress(done, text=f"Updating the library: {state.summary()}{current}")
    elif st.session_state.get(key) == "running":
        with st.container(horizontal=True, vertical_alignment="center"):
            st.success(f"Library updated: {state.summary()}.", icon=":material/check_circle:")
            if st.button("Refresh", key="ingest-banner:refresh", icon=":material/refresh:"):
                st.session_state[key] = "seen"
                st.rerun(scope="app")
