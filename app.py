"""The Streamlit app: `streamlit run app.py`. Thin: page config, the one KnowledgeBase and watcher, navigation.

The pages live in ``kb/ui/`` and call the same ``KnowledgeBase`` methods as the CLI.
"""

from __future__ import annotations

import streamlit as st

from index.store import IndexBusyError
from kb.ui.common import get_kb, get_watcher
from kb.ui.progress import ingest_banner

st.set_page_config(page_title="Digital-health evidence", page_icon=":material/health_metrics:", layout="wide")

try:
    kb = get_kb()
    get_watcher()
except IndexBusyError as exc:
    st.error(f"The index is busy: {exc}")
    st.stop()

pages = [
    st.Page("kb/ui/search_page.py", title="Search", icon=":material/search:", default=True),
    st.Page("kb/ui/ask_page.py", title="Ask", icon=":material/question_answer:", url_path="ask"),
    st.Page("kb/ui/compare_page.py", title="Compare countries", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("kb/ui/saved_page.py", title="Saved searches", icon=":material/bookmarks:", url_path="saved"),
    st.Page("kb/ui/library_page.py", title="Library", icon=":material/library_books:", url_path="library"),
    st.Page("kb/ui/add_page.py", title="Add documents", icon=":material/upload_file:", url_path="add"),
    st.Page("kb/ui/alignment_page.py", title="Alignment", icon=":material/grid_on:", url_path="alignment"),
]
page = st.navigation(pages)
ingest_banner(kb)
page.run()
