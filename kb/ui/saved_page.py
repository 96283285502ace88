"""Saved searches: every search and comparison kept by name, with the passages added since it was last looked at.

"New" means: passages of documents added after the last look that the search finds and that match it closely
(a search always returns something; only real matches count), so after each ingest staff and policymakers see
which of their questions the new reports speak to.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from kb.ui import common as ui
from kb.ui.saving import open_saved

PREFIX = "saved"

kb = ui.get_kb()
names = ui.label_names(kb)
docs = kb.documents()
version = ui.library_version(docs)

st.title("Saved searches")
st.caption(
    "Save a search on the Search page or a comparison on the Compare page. After every ingest, each one here says "
    "how many new passages speak to it since you last looked."
)
stored = kb.saved_searches(with_news=False)
memo_key = (version, tuple((s.name, s.last_seen_at, s.query) for s in stored))
memo = st.session_state.get(f"{PREFIX}:memo")
if memo and memo[0] == memo_key:
    items = memo[1]
else:
    with st.spinner("Looking for new passages…"):
        items = kb.saved_searches()
    st.session_state[f"{PREFIX}:memo"] = (memo_key, items)

if not items:
    st.info("Nothing saved yet: use **Save** next to the results on the Search or Compare page.")
    st.stop()

for saved in items:
    item = hashlib.sha1(saved.name.encode()).hexdigest()[:10]  # widget keys follow the search, not its position
    with st.container(border=True, key=f"{PREFIX}-item-{item}"):
        head = badge = st.container()
        kind = "Comparison" if saved.kind == "compare" else "Search"
        head.markdown(f"**{ui.md_escape(saved.name)}** · {kind}: “{ui.md_escape(saved.query)}”")
        scope = saved.filters.model_dump(exclude_defaults=True)
        bits = [f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in scope.items()]
        if saved.countries:
            bits.append("countries: " + ", ".join(saved.countries))
        bits.append(f"last looked {saved.last_seen_at.replace('T', ' ')[:16]} UTC")
        head.caption(ui.md_escape(" · ".join(bits)))
        if saved.new_passages:
            badge.markdown(f":orange-badge[{ui.plural(saved.new_passages, 'new passage')} since you last looked]")
        else:
            badge.markdown(":gray-badge[nothing new]")
        buttons = st.columns(4)
        if buttons[0].button("Open", key=f"{PREFIX}:open:{item}", icon=":material/open_in_new:", width="stretch"):
            kb.mark_seen(saved.name)
            open_saved(saved)
        show = buttons[1].toggle(
            "Show new",
            key=f"{PREFIX}:show:{item}",
            disabled=not saved.new_passages,
            help="The new passages themselves.",
        )
        if buttons[2].button("Mark as seen", key=f"{PREFIX}:seen:{item}", disabled=not saved.new_passages,
                             width="stretch"):  # fmt: skip
            kb.mark_seen(saved.name)
            st.rerun()
        if buttons[3].button("Remove", key=f"{PREFIX}:remove:{item}", icon=":material/delete:", width="stretch"):
            kb.delete_saved_search(saved.name)
            st.rerun()
        if show and saved.new_passages:
            st.caption("From: " + "; ".join(ui.md_escape(t) for t in saved.new_documents))
            for n, hit in enumerate(kb.new_passages(saved.name), 1):
                ui.hit_card(hit, n, names, f"{PREFIX}-{item}", view=PREFIX)
ui.show_view(kb, PREFIX)
