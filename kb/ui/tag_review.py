"""Staff review a document's framework tags on the Library page: each passage with its tags and the sentence that
triggered each; confirm a tag (every re-tag keeps it), reject it (never given again) or add a missing one."""

from __future__ import annotations

import streamlit as st

from kb.records import Document, TagVerdict
from kb.service import KnowledgeBase
from kb.ui.common import md_escape

PREFIX = "library:tags"
PER_PAGE = 8  # passages shown at a time


def _review(kb: KnowledgeBase, doc_id: str, chunk_id: str, label: str, verdict: TagVerdict | None) -> None:
    try:
        kb.review_tag(doc_id, chunk_id, label, verdict)
    except (KeyError, ValueError, TimeoutError) as exc:
        st.session_state[f"{PREFIX}:error"] = str(exc.args[0] if exc.args else exc)
        return
    words = {TagVerdict.CONFIRMED: "Confirmed", TagVerdict.REJECTED: "Rejected", None: "Withdrew the verdict on"}
    st.session_state[f"{PREFIX}:flash"] = f"{words[verdict]} {label}: re-tagging keeps this."


def tag_review(kb: KnowledgeBase, doc: Document, names: dict[str, str]) -> None:
    if kb.tagger is None:
        st.info("No frameworks file: passages are not tagged.")
        return
    if note := st.session_state.pop(f"{PREFIX}:flash", None):
        st.success(note, icon=":material/check:")
    if problem := st.session_state.pop(f"{PREFIX}:error", None):
        st.error(problem)
    passages = kb.document_passages(doc.doc_id)
    labels = kb.tagger.label_ids
    show = st.selectbox(
        "Passages", ["tagged", "reviewed", "untagged", *labels], key=f"{PREFIX}:show:{doc.doc_id}",
        format_func=lambda x: {"tagged": "every tagged passage", "reviewed": "passages you reviewed",
                               "untagged": "untagged passages"}.get(x, f"tagged {x} {names.get(x, '')}"),
    )  # fmt: skip
    if show == "tagged":
        chosen = [p for p in passages if p.get("labels")]
    elif show == "reviewed":
        chosen = [p for p in passages if p.get("label_reviews")]
    elif show == "untagged":
        chosen = [p for p in passages if not p.get("labels")]
    else:
        chosen = [p for p in passages if show in (p.get("labels") or [])]
    if not chosen:
        st.caption("No passage of this document is in this list.")
        return
    pages = (len(chosen) + PER_PAGE - 1) // PER_PAGE
    page = 1
    if pages > 1:
        page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"{PREFIX}:page:{doc.doc_id}:{show}")
    st.caption(f"{len(chosen)} passages; showing {PER_PAGE * (page - 1) + 1}–{min(len(chosen), PER_PAGE * page)}.")
    for p in chosen[PER_PAGE * (page - 1) : PER_PAGE * page]:
        _passage(kb, doc, p, labels, names)


def _passage(kb: KnowledgeBase, doc: Document, p: dict, labels: list[str], names: dict[str, str]) -> None:
    cid = p["chunk_id"]
    scores, triggers = p.get("label_scores") or {}, p.get("label_triggers") or {}
    reviews = {k: TagVerdict(v) for k, v in (p.get("label_reviews") or {}).items()}
    pages = f"p. {p.get('page_start')}" + (f"–{p.get('page_end')}" if p.get("page_end") != p.get("page_start") else "")
    with st.container(border=True, key=f"{PREFIX}-passage-{cid[:12]}"):
        st.caption(f"Passage {p.get('position', 0) + 1} · {pages}" + (f" · {p['heading']}" if p.get("heading") else ""))
        text = p.get("text", "")
        st.markdown(md_escape(text[:500] + ("…" if len(text) > 500 else "")))
        for label in sorted(set(scores) | set(reviews), key=lambda k: (k not in scores, -scores.get(k, 0))):
            verdict = reviews.get(label)
            row = st.columns([5, 1, 1], vertical_alignment="center")
            state = {TagVerdict.CONFIRMED: "confirmed", TagVerdict.REJECTED: "rejected"}.get(verdict, "")
            head = f":green-badge[{md_escape(label)}] {md_escape(names.get(label, ''))}"
            head += f" · **{state}**" if state else f" · {scores.get(label, 0):.0%}"
            if label in triggers and verdict != TagVerdict.REJECTED:
                head += f"  \nbecause: “{md_escape(triggers[label][:300])}”"
            row[0].markdown(head)
            confirmed, rejected = verdict == TagVerdict.CONFIRMED, verdict == TagVerdict.REJECTED
            confirm_args = (kb, doc.doc_id, cid, label, None if confirmed else TagVerdict.CONFIRMED)
            reject_args = (kb, doc.doc_id, cid, label, None if rejected else TagVerdict.REJECTED)
            row[1].button(
                "Undo" if confirmed else "Confirm", key=f"{PREFIX}:confirm:{cid}:{label}",
                on_click=_review, args=confirm_args, width="stretch",
            )  # fmt: skip
            row[2].button(
                "Undo" if rejected else "Reject", key=f"{PREFIX}:reject:{cid}:{label}",
                on_click=_review, args=reject_args, width="stretch",
            )  # fmt: skip
        missing = [lab for lab in labels if lab not in scores and lab not in reviews]
        add, go = st.columns([5, 2], vertical_alignment="bottom")
        extra = add.selectbox(
            "Add a tag the tagger missed", [None, *missing], key=f"{PREFIX}:add:{cid}",
            format_func=lambda x: "choose an objective" if x is None else f"{x} {names.get(x, '')}",
        )  # fmt: skip
        go.button(
            "Add as confirmed", key=f"{PREFIX}:add-go:{cid}", disabled=extra is None, on_click=_review,
            args=(kb, doc.doc_id, cid, extra, TagVerdict.CONFIRMED), width="stretch",
        )  # fmt: skip
