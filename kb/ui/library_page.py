"""Library: every document with its metadata and ingest status; staff correct metadata or remove a document."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from kb.ui import common as ui
from kb.ui.tag_review import tag_review

PREFIX = "library"
DOC_TYPES = [
    "",
    "strategy",
    "law",
    "guideline",
    "report",
    "survey",
    "factsheet",
    "faq",
    "specification",
    "consultation",
    "classification",
    "dataset",
]

kb = ui.get_kb()
names = ui.label_names(kb)
docs = kb.documents()
version = ui.library_version(docs)
failed = kb.failed_files()

st.title("Library")
ui.flash(PREFIX)
indexed = [d for d in docs if d.status == "indexed"]
cols = st.columns(5)
cols[0].metric("Documents", len(indexed))
cols[1].metric("Pages", sum(d.pages for d in indexed))
cols[2].metric("OCR pages", sum(d.ocr_pages for d in indexed))
cols[3].metric("Passages", sum(d.chunks for d in indexed))
cols[4].metric("Refused files", len(failed))

objectives = ui.document_objectives(kb, version) if indexed else {}
table = pd.DataFrame(
    [
        {
            "file": d.file,
            "title": d.meta.title,
            "publisher": d.meta.publisher,
            "year": d.meta.year,
            "country": d.meta.country,
            "type": d.meta.doc_type,
            "language": d.meta.language,
            "pages": d.pages,
            "OCR pages": d.ocr_pages,
            "passages": d.chunks,
            "objectives": ", ".join(objectives.get(d.file, [])),
            "status": d.status,
            "error": d.error,
            "added": d.added_at[:10],
            "id": d.doc_id,
        }
        for d in docs
    ],
    columns=[
        "file",
        "title",
        "publisher",
        "year",
        "country",
        "type",
        "language",
        "pages",
        "OCR pages",
        "passages",
        "objectives",
        "status",
        "error",
        "added",
        "id",
    ],
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    key=f"{PREFIX}:table",
    column_config={
        "year": st.column_config.NumberColumn(format="%d"),
        "file": st.column_config.TextColumn(width="medium"),
        "title": st.column_config.TextColumn(width="large"),
        "objectives": st.column_config.TextColumn(help="The framework labels most of its passages carry."),
    },
)
if failed:
    st.subheader("Refused files")
    st.caption("Not indexed, with the reason. Replace the file in the drop folder to try again.")
    st.dataframe(
        pd.DataFrame([{"file": f["path"].rsplit("/", 1)[-1], "reason": f["error"], "path": f["path"]} for f in failed]),
        hide_index=True,
        width="stretch",
    )

if not docs:
    st.info("No documents yet: add some on the **Add documents** page or copy them into the drop folder.")
    st.stop()

st.subheader("Correct or remove a document")
if not ui.editor_unlocked(kb, PREFIX):
    st.stop()
by_id = {d.doc_id: d for d in docs}
doc_id = st.selectbox(
    "Document",
    list(by_id),
    key=f"{PREFIX}:doc",
    format_func=lambda i: f"{by_id[i].meta.title or by_id[i].file} ({by_id[i].file})",
)
doc = by_id[doc_id]
m = doc.meta
with st.form(f"{PREFIX}:edit:{doc_id}", border=True):
    st.caption(
        f"{doc.file} · {doc.pages} page{'s' if doc.pages != 1 else ''} · {doc.chunks} passages · id {doc.doc_id}. "
        f"Corrections are written to {kb.settings.metadata_csv.name} and apply at once, without re-indexing."
    )
    title = st.text_input("Title", m.title, key=f"{PREFIX}:title:{doc_id}")
    a, b, c = st.columns(3)
    publisher = a.text_input("Publisher", m.publisher, key=f"{PREFIX}:publisher:{doc_id}")
    year = b.text_input("Year", str(m.year or ""), key=f"{PREFIX}:year:{doc_id}", placeholder="e.g. 2024")
    country = c.text_input(
        "Country", m.country, key=f"{PREFIX}:country:{doc_id}", help="ISO code (FR, NO, DE) or EU, INT"
    )
    a, b, c = st.columns(3)
    types = DOC_TYPES + ([m.doc_type] if m.doc_type not in DOC_TYPES else [])
    doc_type = a.selectbox(
        "Document type",
        types,
        index=types.index(m.doc_type),
        key=f"{PREFIX}:type:{doc_id}",
        format_func=lambda t: t or "unknown",
    )
    language = b.text_input("Language", m.language, key=f"{PREFIX}:language:{doc_id}", help="ISO 639-1 (en, fr, no)")
    url = c.text_input("Source URL", m.url, key=f"{PREFIX}:url:{doc_id}")
    saved = st.form_submit_button("Save corrections", type="primary")
if saved:
    year_value = year.strip()
    if year_value and not (year_value.isdigit() and 1900 <= int(year_value) <= 2100):
        st.error("The year must be a four-digit year, or empty.")
    else:
        changes = {
            "title": title.strip(),
            "publisher": publisher.strip(),
            "year": int(year_value) if year_value else None,
            "country": country.strip().upper(),
            "doc_type": doc_type,
            "language": language.strip().lower(),
            "url": url.strip(),
        }
        try:
            kb.update_metadata(doc_id, changes)
        except (KeyError, TimeoutError) as exc:
            st.error(str(exc))
        else:
            ui.flash(PREFIX, f"Saved the corrections to {doc.file}.")
            st.rerun()

with st.expander("Review its framework tags", icon=":material/fact_check:", key=f"{PREFIX}:tags-box"):
    tag_review(kb, doc, ui.label_names(kb))

with st.expander(f"Remove {doc.file} from the library"):
    st.write("The file is deleted from the drop folder and its passages leave the index. This cannot be undone.")
    sure = st.checkbox("Yes, remove this document", key=f"{PREFIX}:sure:{doc_id}")
    if st.button("Remove", type="primary", disabled=not sure, key=f"{PREFIX}:remove:{doc_id}"):
        try:
            outcome = kb.remove_document(doc_id)
        except (KeyError, TimeoutError) as exc:
            st.error(str(exc))
        else:
            note = f"Removed {doc.file}."
            if outcome["kept"]:
                note += " Not deleted (it will come back at the next ingest of that folder): " + "; ".join(
                    outcome["kept"]
                )
            ui.flash(PREFIX, note)
            st.rerun()
