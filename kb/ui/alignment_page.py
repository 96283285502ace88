"""Alignment: passages per framework objective × country (or document), a cell's passages, and the gaps."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from kb.records import SearchFilters
from kb.ui import common as ui

PREFIX = "align"

kb = ui.get_kb()
names = ui.label_names(kb)
docs = kb.documents()
version = ui.library_version(docs)

st.title("Alignment with the strategic frameworks")
st.caption(
    "Every passage is tagged with the objectives it addresses: the WHO Global Strategy on Digital Health 2020–2025 "
    "(GSDH), the WHO/Europe Regional Digital Health Action Plan 2023–2030 (RDHAP) and the Strategic Partners' "
    "working groups (WG). A cell counts the passages on one objective; an empty cell is a gap in the evidence."
)
if kb.tagger is None:
    st.error(f"No frameworks file at {kb.settings.frameworks_file}.")
    st.stop()
if not any(d.status == "indexed" for d in docs):
    st.info("The library is empty: add documents first.")
    st.stop()

GROUPINGS = {"about": "Countries discussed", "country": "Publisher country", "document": "Document"}
default_by = "about" if ui.countries_in_library(kb, version) else "country"  # a library naming no country yet
by = (
    st.segmented_control(
        "Columns", list(GROUPINGS), key=f"{PREFIX}:by", default=default_by, format_func=GROUPINGS.__getitem__
    )
    or default_by
)
cov = ui.coverage_table(kb, by, version)
labels, columns = cov["labels"], cov["columns"]
if not columns:
    st.info("No passage of the library names a country yet." if by == "about" else "No passages to map yet.")
    st.stop()
frameworks = {lab.id: fw.name for fw in kb.tagger.frameworks.frameworks for lab in fw.labels}
descriptions = {lab.id: lab.description for lab in kb.tagger.frameworks.labels}

rows = [
    {
        "objective": lab,
        "name": f"{lab} {names.get(lab, '')}",
        "column": col,
        "passages": cov["counts"].get(lab, {}).get(col, 0),
        "share": 0.0,
    }
    for lab in labels
    for col in columns
]
for r in rows:
    total = cov["totals"].get(r["column"], 0)
    r["share"] = round(100 * r["passages"] / total, 1) if total else 0.0
    r["cell"] = str(r["passages"]) if r["passages"] else "–"
data = pd.DataFrame(rows)
order = [f"{lab} {names.get(lab, '')}" for lab in labels]
shown_columns = columns[:40]
data = data[data["column"].isin(shown_columns)]
base = alt.Chart(data).encode(
    x=alt.X("column:N", sort=shown_columns, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=180)),
    y=alt.Y("name:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
)
cell = alt.selection_point(fields=["objective", "column"], name="cell", on="click", clear=False)
heat = (
    base.mark_rect(stroke="white")
    .encode(
        color=alt.Color("passages:Q", scale=alt.Scale(scheme="yellowgreenblue", type="symlog"), legend=None),
        tooltip=[
            alt.Tooltip("name:N", title="objective"),
            alt.Tooltip("column:N", title=by),
            alt.Tooltip("passages:Q"),
            alt.Tooltip("share:Q", title="% of its passages"),
        ],
        opacity=alt.condition(cell, alt.value(1.0), alt.value(0.85)),
    )
    .add_params(cell)
)
text = base.mark_text(fontSize=11).encode(
    text="cell:N",
    color=alt.condition(
        alt.datum.passages > max(1, int(data["passages"].max() * 0.5)), alt.value("white"), alt.value("#333")
    ),
)
chart = (heat + text).properties(height=30 * len(labels) + 10)
event = st.altair_chart(chart, on_select="rerun", selection_mode="cell", key=f"{PREFIX}:chart", width="stretch")
picked = (event or {}).get("selection", {}).get("cell") or []
if picked and picked[0].get("objective") in labels and picked[0].get("column") in columns:
    choice = (picked[0]["objective"], picked[0]["column"])
    if st.session_state.get(f"{PREFIX}:applied") != choice:  # a new click on the chart chooses the cell below
        st.session_state[f"{PREFIX}:applied"] = choice
        st.session_state[f"{PREFIX}:label"], st.session_state[f"{PREFIX}:column"] = choice
plural = (
    {"about": "countries discussed", "country": "countries", "document": "documents"}[by] if len(columns) != 1 else by
)
st.caption(
    f"Click a cell, or choose one below. Columns: {len(columns)} {plural}"
    + (" (the 40 largest shown)" if len(columns) > 40 else "")
    + "."
)

if st.session_state.get(f"{PREFIX}:column") not in columns:  # first visit, or the other grouping: the fullest cell
    fullest = max(((lab, col) for lab in labels for col in columns), key=lambda lc: cov["counts"][lc[0]].get(lc[1], 0))
    st.session_state[f"{PREFIX}:label"], st.session_state[f"{PREFIX}:column"] = fullest

left, right = st.columns([3, 2])
with right:
    st.subheader("Gaps")
    if cov["gaps"]:
        st.markdown("\n".join(f"- {ui.md_escape(g)}" for g in cov["gaps"]))
    else:
        st.markdown("Every objective has evidence in every column.")
    strongest = sorted(((sum(cov["counts"].get(lab, {}).values()), lab) for lab in labels), reverse=True)
    if strongest and strongest[0][0]:
        st.caption(
            f"Most evidence: {strongest[0][1]} {names.get(strongest[0][1], '')} ({strongest[0][0]} passages). "
            f"Least: {strongest[-1][1]} {names.get(strongest[-1][1], '')} ({strongest[-1][0]})."
        )

with left:
    st.subheader("Passages in a cell")
    a, b = st.columns(2)
    label = a.selectbox("Objective", labels, key=f"{PREFIX}:label", format_func=lambda x: f"{x} {names.get(x, '')}")
    column = b.selectbox(
        GROUPINGS[by], columns, key=f"{PREFIX}:column", format_func=ui.country_label if by != "document" else str
    )
    n = cov["counts"].get(label, {}).get(column, 0)
    st.caption(f"{frameworks.get(label, '')}: {descriptions.get(label, '')}")
    if n == 0:
        st.info(f"No passage from {column} addresses {label} {names.get(label, '')}: a gap.")
    else:
        if by == "document":
            filters = SearchFilters(objectives=[label], files=[column])
        elif by == "about":
            filters = SearchFilters(objectives=[label], about=[column])
        elif column == "unknown":
            filters = SearchFilters(objectives=[label])
            st.caption("These documents have no country; showing this objective's passages from the whole library.")
        else:
            filters = SearchFilters(objectives=[label], countries=[column])
        memo_key = (label, column, by, version)
        memo = st.session_state.get(f"{PREFIX}:memo")
        if memo and memo[0] == memo_key:
            result = memo[1]
        else:
            with st.spinner("Finding the passages…"):
                result = kb.search(f"{names.get(label, '')}. {descriptions.get(label, '')}", filters, k=8)
            st.session_state[f"{PREFIX}:memo"] = (memo_key, result)
            ui.close_view(PREFIX)
        st.caption(f"{n} passages in this cell; the {len(result.hits)} closest to the objective's description:")
        for i, hit in enumerate(result.hits, 1):
            ui.hit_card(hit, i, names, PREFIX, focus=label)
        ui.show_view(kb, PREFIX)
