"""Add documents: drag and drop files, checked and stored in the drop folder, then ingested with a progress bar
and the per-file report. Files copied straight into the drop folder are ingested by the watcher."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ingest.pipeline import doc_id_for
from kb.records import IngestReport
from kb.ui import common as ui
from kb.uploads import ACCEPTED_EXTENSIONS, save_upload

PREFIX = "add"

kb = ui.get_kb()
watcher = ui.get_watcher()
s = kb.settings

st.title("Add documents")
st.caption(
    f"PDF, Word (.docx), HTML, Markdown or plain text, in any language, up to {s.upload_max_mb} MB each. "
    "Each file is checked by its content (a web page saved as .pdf is refused with the reason), stored in the "
    "library folder, read (scanned pages through OCR), tagged with the framework objectives and indexed."
)


def report_table(report: IngestReport, changes_only: bool = False) -> pd.DataFrame:
    files = [f for f in report.files if not changes_only or f.status.value != "unchanged"]
    return pd.DataFrame(
        [
            {
                "file": Path(f.path).name,
                "status": f.status.value,
                "pages": f.pages,
                "OCR pages": f.ocr_pages,
                "language": f.language,
                "passages": f.chunks,
                "seconds": f.seconds,
                "reason": f.error,
            }
            for f in files
        ],
        columns=["file", "status", "pages", "OCR pages", "language", "passages", "seconds", "reason"],
    )


def show_report(report: IngestReport) -> None:
    t = report.totals()
    summary = ", ".join(
        f"{t[k]} {k}" for k in ("added", "updated", "duplicate", "unchanged", "removed", "failed") if t[k]
    )
    (st.warning if t["failed"] else st.success)(f"Ingest finished: {summary or 'nothing to do'}.")
    st.dataframe(report_table(report), hide_index=True, width="stretch", key=f"{PREFIX}:report")


if ui.editor_unlocked(kb, PREFIX):
    with st.form(f"{PREFIX}:form", clear_on_submit=True, border=True):
        files = st.file_uploader(
            "Drag and drop files here",
            accept_multiple_files=True,
            type=ACCEPTED_EXTENSIONS,
            max_upload_size=s.upload_max_mb,
            key=f"{PREFIX}:files",
        )
        submitted = st.form_submit_button("Add to the library", type="primary", icon=":material/upload:")
    if submitted and not files:
        st.warning("Choose or drop at least one file first.")
    if submitted and files:
        results = []
        for f in files:
            data = f.getvalue()
            known = kb.document(doc_id_for(hashlib.sha256(data).hexdigest()))
            results.append(save_upload(s, f.name, data, known.paths[0] if known and known.paths else None))
        st.session_state[f"{PREFIX}:uploads"] = [
            {"file": r.name, "upload": r.status, "note": r.message} for r in results
        ]
        saved = [r.path for r in results if r.ok and r.path is not None]
        report = None
        if saved:
            bar = st.progress(0.0, text="Waiting for the index…")
            order = {p.name: i for i, p in enumerate(saved)}

            def progress(file: str, stage: str, done: int, total: int) -> None:
                part = 0.1 if stage == "reading" else 0.1 + 0.9 * done / max(total, 1)
                i = order.get(file, 0)
                bar.progress(min(1.0, (i + part) / len(saved)), text=f"{file}: {stage} {done}/{total}")

            started = time.perf_counter()
            report = kb.ingest(saved, progress=progress)
            watcher.acknowledge(saved)  # the watcher need not ingest them again
            bar.progress(1.0, text=f"Done in {time.perf_counter() - started:.0f} s")
        st.session_state[f"{PREFIX}:report"] = report

    uploads = st.session_state.get(f"{PREFIX}:uploads")
    if uploads:
        st.subheader("Upload check")
        st.dataframe(pd.DataFrame(uploads), hide_index=True, width="stretch", key=f"{PREFIX}:checks")
    if st.session_state.get(f"{PREFIX}:report") is not None:
        st.subheader("Ingest report")
        show_report(st.session_state[f"{PREFIX}:report"])

st.subheader("Drop folder")
interval = watcher.interval_s


@st.fragment(run_every=max(interval, 2.0) if watcher.status.running else None)
def watcher_status() -> None:
    w = watcher.status
    if not w.running:
        st.caption(
            f"Files copied into {w.folder} are ingested at the next start (the watcher is off: KB_WATCH_INTERVAL_S=0)."
        )
        return
    ago = f"{time.time() - w.last_poll:.0f} s ago" if w.last_poll else "not yet"
    st.caption(f"Files copied into {w.folder} are ingested within about {2 * interval:.0f} s. Last look: {ago}.")
    if w.last_error:
        st.error(f"The last automatic ingest failed: {w.last_error}")
    if w.last_report is not None:
        when = time.strftime("%H:%M:%S", time.localtime(w.last_ingest)) if w.last_ingest else ""
        changes = report_table(w.last_report, changes_only=True)
        if len(changes):
            st.markdown(f"**Last automatic ingest** ({when})")
            st.dataframe(changes, hide_index=True, width="stretch")
        else:
            st.caption(f"Last automatic ingest ({when}): nothing new.")


watcher_status()
