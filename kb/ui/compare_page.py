"""Compare: one question across countries. Each row quotes the best evidence for one country (cited to its page),
or says plainly that the library holds none; exports as CSV or a Markdown brief; the comparison can be saved."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kb.export import comparison_csv, comparison_markdown
from kb.records import country_code
from kb.ui import common as ui
from kb.ui.saving import save_form

PREFIX = "compare"


def seed_countries() -> None:
    """The compared countries from the URL (``?q=...&c=EE&c=FR``) once per session, else as last left."""
    saved = st.session_state[f"{PREFIX}:saved"]
    if "c" not in saved:
        saved["c"] = [country_code(c) for c in ui.current_params().get("c", []) if c]
    if f"{PREFIX}:opening" in st.session_state:  # a saved comparison being opened: see ui.seed_state
        st.session_state[f"{PREFIX}:compared"] = list(saved["c"])
    st.session_state.setdefault(f"{PREFIX}:compared", list(saved["c"]))


kb = ui.get_kb()
names = ui.label_names(kb)
docs = kb.documents()
version = ui.library_version(docs)
ui.seed_state(PREFIX)
seed_countries()

st.title("Compare countries")
st.caption(
    "One question, one row per country: the library's best evidence on passages that discuss that country (whoever "
    "published them), quoted in the original language and cited to the page, or an explicit “no evidence”."
)
if not any(d.status == "indexed" for d in docs):
    st.info("The library is empty. Add documents on the **Add documents** page, or copy files into the drop folder.")
    st.stop()

discussed = ui.countries_in_library(kb, version)
options = list(discussed) + sorted(c for c in kb.countries.region_members if c not in discussed)
options += [c for c in st.session_state.get(f"{PREFIX}:compared", []) if c not in options]  # from a link
with st.container(horizontal=True, vertical_alignment="bottom"):
    question = st.text_input(
        "Question", key=f"{PREFIX}:text",
        placeholder="e.g. How are e-prescriptions organised? · Comment la téléconsultation est-elle remboursée ?",
    )  # fmt: skip
    st.button("Compare", type="primary", key=f"{PREFIX}:go")
chosen = st.multiselect(
    "Countries",
    options,
    key=f"{PREFIX}:compared",
    format_func=ui.country_label,  # stable: a label that changed with the counts would drop the choice
    placeholder=f"the {kb.settings.compare_max_countries} countries the library discusses most",
    help="Countries the library's passages discuss, then the other Member States of the WHO European Region.",
)
filters = ui.state_filters(PREFIX, docs).model_copy(update={"about": []})  # each row sets its own country
ui.filters_sidebar(PREFIX, docs, names, None, skip=("about",))
every = not chosen and st.toggle(
    "Every country the library discusses", key=f"{PREFIX}:every",
    help=f"Off: the {kb.settings.compare_max_countries} countries the library discusses most.",
)  # fmt: skip
ui.publish_state(PREFIX, question.strip(), filters, c=chosen)

if not question.strip():
    top = ", ".join(ui.country_label(c) for c in list(discussed)[:8])
    st.caption(f"The library discusses {len(discussed)} countries" + (f", most often {top}." if top else "."))
    st.stop()

memo_key = (question.strip(), tuple(chosen), every, filters.model_dump_json(), version)
memo = st.session_state.get(f"{PREFIX}:memo")
if memo and memo[0] == memo_key:
    comparison = memo[1]
else:
    with st.spinner("Searching each country's passages…"):
        comparison = kb.compare(question.strip(), chosen or None, filters, every_country=every)
    st.session_state[f"{PREFIX}:memo"] = (memo_key, comparison)
    ui.close_view(PREFIX)

found = [r for r in comparison.rows if r.found]
head, csv_col, md_col, save_col = st.columns([3, 1, 1, 1], vertical_alignment="center")
head.caption(
    f"{len(comparison.rows)} countries · evidence for {len(found)} · none for {len(comparison.rows) - len(found)}"
)
csv_col.download_button(
    "CSV", comparison_csv(comparison), file_name="comparison.csv", mime="text/csv", key=f"{PREFIX}:csv",
    on_click="ignore", icon=":material/download:", width="stretch",
)  # fmt: skip
md_col.download_button(
    "Brief", comparison_markdown(comparison, names), file_name="comparison.md", mime="text/markdown",
    key=f"{PREFIX}:md", on_click="ignore", icon=":material/download:", width="stretch",
    help="A Markdown brief: each country's quoted evidence, then the references.",
)  # fmt: skip
with save_col.popover("Save", icon=":material/bookmark_add:", width="stretch"):
    save_form(kb, PREFIX, question.strip(), filters, kind="compare", countries=chosen)

overview = pd.DataFrame(
    [
        {
            "country": ui.country_label(r.country),
            "Region member": "yes" if r.region_member else "",
            "passages": r.passages,
            "evidence": (r.citations[0].quote[:160] if r.citations else "no evidence in the library"),
            "source": (f"{r.citations[0].file}, p. {r.citations[0].page}" if r.citations else ""),
        }
        for r in comparison.rows
    ]
)
table = st.dataframe(
    overview, hide_index=True, width="stretch", key=f"{PREFIX}:overview", on_select="rerun",
    selection_mode="single-row",
)  # fmt: skip
st.caption("Select a row to open its first quote on the cited page.")
picked = table.selection.rows if table else []
if picked and comparison.rows[picked[0]].citations:
    choice = (memo_key, picked[0])
    if st.session_state.get(f"{PREFIX}:picked") != choice:  # a new selection opens its page once
        st.session_state[f"{PREFIX}:picked"] = choice
        ui.open_view(PREFIX, ui.citation_request(comparison.rows[picked[0]].citations[0]))

for i, row in enumerate(comparison.rows, 1):
    with st.container(border=True, key=f"{PREFIX}-row-{i}"):
        label = ui.md_escape(ui.country_label(row.country))
        st.markdown(f"**{label}** · {ui.plural(row.passages, 'passage')} discuss{'es' if row.passages == 1 else ''} it")
        if not row.found:
            st.warning(f"No evidence in the library. {row.note}", icon=":material/search_off:")
            continue
        for c in row.citations:
            quote, action = st.columns([5, 1], vertical_alignment="top")
            quote.markdown(f"“{ui.md_escape(c.quote)}”")
            quote.caption(ui.md_escape(f"{c.title or c.file} · {c.publisher or 'n.p.'} · {c.year or 'n.d.'} · "
                                       f"{c.language} · {c.file}, p. {c.page}"))  # fmt: skip
            action.button(
                f"Open p. {c.page}", key=f"{PREFIX}:open:{i}:{c.n}", on_click=ui.open_view, width="stretch",
                args=(PREFIX, ui.citation_request(c)),
            )  # fmt: skip
        extra = [f"named as “{m}”" for m in row.mentions] + [
            f"{lab} {names.get(lab, '')}".strip() for lab in row.labels
        ]
        if extra:
            st.caption(" · ".join(ui.md_escape(x) for x in extra))
ui.show_view(kb, PREFIX)
