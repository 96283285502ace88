"""Ask: a question, an answer whose every sentence is cited to a page, or a plain "no sufficient evidence" that
says what was searched and shows the closest passages."""

from __future__ import annotations

import streamlit as st

from kb.export import answer_markdown, bibtex, cited_documents, ris
from kb.records import Answer, AnswerOutcome
from kb.ui import common as ui

PREFIX = "ask"
MODES = {"evidence": "Evidence (quoted sentences)", "llm": "Written answer (local LLM)"}

kb = ui.get_kb()
names = ui.label_names(kb)
docs = kb.documents()
version = ui.library_version(docs)
ui.seed_state(PREFIX)
saved_mode = st.session_state[f"{PREFIX}:saved"].get("mode")
llm_ready = bool(kb.settings.llm_model or kb.settings.llm_base_url)
modes = list(MODES) if llm_ready else ["evidence"]
default_mode = kb.settings.answer_mode if kb.settings.answer_mode in modes else "evidence"
if f"{PREFIX}:mode" not in st.session_state:
    st.session_state[f"{PREFIX}:mode"] = saved_mode if saved_mode in modes else default_mode

st.title("Ask the library")
with st.container(horizontal=True, vertical_alignment="bottom"):
    question = st.text_input(
        "Your question, in any language",
        key=f"{PREFIX}:text",
        placeholder="e.g. Who supports hospitals against cyber-attacks? · Quelles règles pour la pseudonymisation ?",
    )
    st.button("Ask", type="primary", key=f"{PREFIX}:go")
if llm_ready:
    mode = st.radio("Answer", modes, key=f"{PREFIX}:mode", format_func=MODES.get, horizontal=True)
else:
    mode = "evidence"
    st.caption(
        "Answers quote the documents' own sentences, each cited to its page (a written answer needs a local "
        "LLM: KB_LLM_MODEL)."
    )
strict = st.toggle(
    "Strict: answer only when a sentence answers the question",
    value=kb.settings.answerability_gate,
    key=f"{PREFIX}:strict",
    help="Otherwise the closest evidence is shown as such, or the library says it does not hold the answer. "
    "Strict answers less often and is wrong less often.",
)
filters = ui.state_filters(PREFIX, docs)
ui.filters_sidebar(PREFIX, docs, names, None)
ui.publish_state(PREFIX, question.strip(), filters, **({"mode": mode} if mode != default_mode else {}))

answer: Answer | None = None
if question.strip():
    memo_key = (question.strip(), filters.model_dump_json(), mode, strict, version)
    memo = st.session_state.get(f"{PREFIX}:memo")
    if memo and memo[0] == memo_key:
        answer = memo[1]
    else:
        from answer.llm import LLMUnavailableError

        try:
            with st.spinner("Searching the library and checking every sentence against its source…"):
                answer = kb.ask(question.strip(), None if filters.is_empty() else filters, mode, strict)
        except LLMUnavailableError as exc:
            st.error(f"The LLM is not available: {exc}")
        if answer is not None:
            st.session_state[f"{PREFIX}:memo"] = (memo_key, answer)
            ui.close_view(PREFIX)


def searched_panel(a: Answer) -> None:
    c = a.coverage or {}
    with st.container(border=True, key="ask-searched"):
        st.markdown("**What was searched**")
        cols = st.columns(4)
        cols[0].metric("Documents", c.get("documents", 0))
        cols[1].metric("Passages", c.get("passages", 0))
        years = c.get("years") or []
        cols[2].metric("Years", f"{years[0]}–{years[1]}" if years else "–")
        best = c.get("best_evidence_score")
        cols[3].metric(
            "Best match",
            f"{best:.2f}" if isinstance(best, float) else "–",
            help="Question–sentence similarity; the topic counts as covered from "
            f"{c.get('abstain_below', kb.settings.abstain_threshold):.2f}.",
        )
        rows = [
            ("Languages", ", ".join(ui.language_label(x) for x in c.get("languages", [])) or "none"),
            ("Countries", ", ".join(c.get("countries", [])) or "none"),
            ("Document types", ", ".join(c.get("doc_types", [])) or "none"),
            ("Question language", c.get("query_language") or "not detected"),
        ]
        if c.get("filters"):
            rows.append(("Filters", "; ".join(f"{k}: {v}" for k, v in c["filters"].items())))
        st.markdown("\n".join(f"- **{k}:** {ui.md_escape(str(v))}" for k, v in rows))


if answer is not None:
    if answer.outcome == AnswerOutcome.CLOSEST:
        with st.container(border=True, key="ask-outcome-closest-evidence"):
            st.info(
                "**Closest evidence — it may not answer your question.** " + ui.md_escape(answer.why),
                icon=":material/help:",
            )
            for c in answer.citations:
                st.markdown(
                    f"“{ui.md_escape(c.quote.strip())}” — {ui.md_escape(c.title or c.file)}, p. {c.page}"
                    f" ({ui.language_label(c.language)})"
                )
        searched_panel(answer)
        if answer.evidence:
            st.subheader("Closest passages")
            st.caption("Shown so you can judge for yourself; none of them was found to answer the question.")
            for n, hit in enumerate(answer.evidence, 1):
                ui.hit_card(hit, n, names, PREFIX)
    elif answer.abstained:
        with st.container(border=True, key="ask-outcome-not-in-library"):
            st.warning(
                "**No sufficient evidence.** " + ui.md_escape(answer.why),
                icon=":material/search_off:",
            )
            st.markdown(ui.md_escape(answer.answer))
        searched_panel(answer)
        if answer.evidence:
            st.subheader("Closest passages")
            st.caption("Shown so you can judge for yourself; none of them answers the question closely enough.")
            for n, hit in enumerate(answer.evidence, 1):
                ui.hit_card(hit, n, names, PREFIX)
    else:
        with st.container(border=True, key="ask-answer"):
            st.success(ui.md_escape(answer.why) or "Answered from the library.", icon=":material/check_circle:")
            st.markdown(ui.snippet_markdown(answer.answer).replace("\n", "  \n"))
            tags = ui.badges("", answer.objectives, names)
            if tags:
                st.markdown(f"Objectives: {tags}")
            st.caption(
                f"Mode: {answer.mode} · {len(answer.citations)} citations"
                + (
                    f" · {answer.dropped_claims} unsupported sentence(s) removed by the claim check"
                    if answer.dropped_claims
                    else ""
                )
            )
        st.subheader("Sources")
        passages = {h.chunk_id: h.text for h in answer.evidence}
        for c in answer.citations:
            with st.container(border=True, key=f"ask-cite-{c.n}"):
                text, action = st.columns([5, 1], vertical_alignment="center")
                text.markdown(
                    f"**[{c.n}]** {ui.md_escape(c.title or c.file)} — {ui.md_escape(c.publisher or 'n.p.')}, "
                    f"{c.year or 'n.d.'} · {ui.md_escape(c.file)}, p. {c.page}  \n"
                    f"“{ui.md_escape(c.quote.strip())}”"
                )
                action.button(
                    f"Open [{c.n}] p. {c.page}",
                    key=f"{PREFIX}:cite:{c.n}",
                    width="stretch",
                    on_click=ui.open_view,
                    args=(PREFIX, ui.citation_request(c, passages.get(c.chunk_id, ""))),
                )
        with st.expander(f"Evidence passages ({len(answer.evidence)})"):
            for n, hit in enumerate(answer.evidence, 1):
                ui.hit_card(hit, n, names, f"{PREFIX}-evidence", view=PREFIX)
    cited = cited_documents([c.doc_id for c in answer.citations] or [h.doc_id for h in answer.evidence], docs)
    with st.container(horizontal=True, key="ask-downloads"):
        st.download_button(
            "Markdown",
            answer_markdown(answer, names),
            file_name="answer.md",
            mime="text/markdown",
            key=f"{PREFIX}:md",
            on_click="ignore",
            icon=":material/download:",
            help="The answer with its numbered references.",
        )
        st.download_button(
            "BibTeX",
            bibtex(cited),
            file_name="answer-references.bib",
            mime="application/x-bibtex",
            key=f"{PREFIX}:bib",
            on_click="ignore",
            icon=":material/download:",
        )
        st.download_button(
            "RIS",
            ris(cited),
            file_name="answer-references.ris",
            mime="application/x-research-info-systems",
            key=f"{PREFIX}:ris",
            on_click="ignore",
            icon=":material/download:",
        )
    ui.show_view(kb, PREFIX)
