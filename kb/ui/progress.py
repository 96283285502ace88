"""The banner every page shows while the library is being built or updated (by the watcher, an upload, a start)."""

from __future__ import annotations

import streamlit as st

from kb.service import KnowledgeBase

BUSY_REFRESH_S = 2.0  # while an ingest runs
IDLE_REFRESH_S = 10.0  # how soon a page notices that the watcher started one


def ingest_banner(kb: KnowledgeBase) -> None:
    every = BUSY_REFRESH_S if kb.ingest_progress.running else IDLE_REFRESH_S
    st.fragment(run_every=every)(_banner)(kb)


def _banner(kb: KnowledgeBase) -> None:
    """Files, pages, passages and OCR pages so far. When an ingest starts or ends the whole page reruns: its timer
    changes, and searches and counts see the new documents."""
    state = kb.ingest_progress
    was_running = st.session_state.get("ingest-banner:running", False)
    st.session_state["ingest-banner:running"] = state.running
    if state.running != was_running and st.session_state.get("ingest-banner:seen"):
        st.rerun()
    st.session_state["ingest-banner:seen"] = True
    if state.running:
        done = state.files_done / state.files_total if state.files_total else 0.0
        current = f" · now {state.stage} {state.current_file}" if state.current_file else ""
        st.progress(done, text=f"Updating the library: {state.summary()}{current}")
