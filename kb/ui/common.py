"""What every page shares: the one KnowledgeBase and watcher per process, filters, hit cards, the page viewer.

Pages call only ``KnowledgeBase`` methods; this module adds no logic of its own beyond presentation and the
mapping between the URL's query parameters and ``SearchFilters`` (so a copied link reproduces a search).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from pathlib import Path

import streamlit as st

from kb.records import Document, Hit, SearchFilters
from kb.service import KnowledgeBase
from kb.settings import get_settings
from kb.ui.viewer import ViewRequest, bold_pieces, highlight_boxes, is_pdf, page_count, quote_pieces, single_page
from kb.uploads import check_password, editor_required
from kb.watcher import Watcher

# SearchFilters list field -> (query parameter, facet name in SearchResult.facets, sidebar label)
LIST_FILTERS = (
    ("languages", "lang", "language", "Language"),
    ("countries", "country", "country", "Country"),
    ("doc_types", "type", "doc_type", "Document type"),
    ("publishers", "publisher", "publisher", "Publisher"),
    ("objectives", "objective", "objective", "Strategic objective"),
    ("about", "about", "about", "Country discussed"),
)
LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "nl": "Dutch",
    "da": "Danish",
    "sv": "Swedish",
    "fi": "Finnish",
}


# --- one knowledge base and one watcher per process ---------------------------------------------------------------
def open_kb() -> KnowledgeBase:
    """The service object for this process's settings (the tests substitute their temporary library here)."""
    return KnowledgeBase(get_settings())


@st.cache_resource(show_spinner="Loading the library and the embedding model…")
def get_kb() -> KnowledgeBase:
    kb = open_kb()
    _ = kb.store, kb.registry  # open the index now: embedded Qdrant admits one holder, this process
    _ = kb.embedder.model  # the first search should not pay the model load
    return kb


@st.cache_resource(show_spinner=False)
def get_watcher() -> Watcher:
    """The drop-folder watcher thread, started once per process (KB_WATCH_INTERVAL_S=0 leaves it off)."""
    return Watcher(get_kb()).start()


def label_names(kb: KnowledgeBase) -> dict[str, str]:
    tagger = kb.tagger
    if tagger is None:
        return {}
    return {lab.id: lab.short for lab in tagger.frameworks.labels}


def library_version(docs: list[Document]) -> str:
    """Changes whenever a document is added, removed, re-indexed or edited (keys the per-session caches)."""
    raw = "|".join(f"{d.doc_id}:{d.status}:{d.updated_at}:{d.chunks}" for d in docs)
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


# --- text ---------------------------------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$])")


def md_escape(text: str) -> str:
    """Literal text inside Markdown (``$`` would start LaTeX, ``*`` emphasis, ``#`` a heading...)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


_BLOCK_START = re.compile(r"^(\s*)(\d+)([.)])|^(\s*)([-+=])", re.M)


def block_safe(markdown: str) -> str:
    """Keep a line that starts like '1. ' or '- ' from turning into a list (or '=' into a heading rule)."""
    return _BLOCK_START.sub(lambda m: f"{m[1]}{m[2]}\\{m[3]}" if m[2] else f"{m[4]}\\{m[5]}", markdown)


def snippet_markdown(snippet: str) -> str:
    """A search snippet as Markdown: its **match** markers stay bold, everything else is literal."""
    parts = snippet.split("**")
    out = "".join(f"**{md_escape(p.strip())}**" if i % 2 and p.strip() else md_escape(p) for i, p in enumerate(parts))
    return block_safe(out)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def country_label(code: str) -> str:
    """ "EE · Estonia": the code users filter by and the name they read."""
    from alignment.countries import country_name

    name = country_name(code)
    return f"{code} · {name}" if name != code else code


def language_label(code: str) -> str:
    return f"{code} · {LANGUAGE_NAMES[code]}" if code in LANGUAGE_NAMES else code


# --- URL <-> filters ----------------------------------------------------------------------------------------------
def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def filters_from_params(params: dict[str, list[str]]) -> SearchFilters:
    """Query parameters (``lang=fr&lang=de&year_from=2020``) to filters; unknown or malformed values are dropped."""
    values: dict = {}
    for field, param, _, _ in LIST_FILTERS:
        values[field] = [v for v in params.get(param, []) if v]
    values["year_from"] = _int((params.get("year_from") or [None])[0])
    values["year_to"] = _int((params.get("year_to") or [None])[0])
    return SearchFilters(**values)


def params_from_filters(filters: SearchFilters, **extra: str | list[str]) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {k: v for k, v in extra.items() if v}
    for field, param, _, _ in LIST_FILTERS:
        if getattr(filters, field):
            out[param] = list(getattr(filters, field))
    if filters.year_from is not None:
        out["year_from"] = str(filters.year_from)
    if filters.year_to is not None:
        out["year_to"] = str(filters.year_to)
    return out


def current_params() -> dict[str, list[str]]:
    return {k: st.query_params.get_all(k) for k in st.query_params}


def seed_state(prefix: str, text_key: str = "q") -> None:
    """Fill this page's widget state from the URL once per session, or from the page's last state on return.

    A saved search being opened (``{prefix}:opening``) is forced into the widgets on every run until the page has
    shown it once: a periodic fragment run during the page switch can evict widget state (streamlit#10805)."""
    opening = st.session_state.get(f"{prefix}:opening")
    if opening is not None:
        st.session_state[f"{prefix}:saved"] = dict(opening)
        st.session_state[f"{prefix}:text"] = opening["text"]
        for field, _, _, _ in LIST_FILTERS:
            st.session_state[f"{prefix}:{field}"] = list(opening["filters"].get(field) or [])
        st.session_state[f"{prefix}:year_from"] = opening["filters"].get("year_from")
        st.session_state[f"{prefix}:year_to"] = opening["filters"].get("year_to")
    saved = st.session_state.get(f"{prefix}:saved")
    if saved is None:
        params = current_params()
        saved = {"text": (params.get(text_key) or [""])[0], "filters": filters_from_params(params).model_dump()}
        if mode := (params.get("mode") or [None])[0]:
            saved["mode"] = mode
        st.session_state[f"{prefix}:saved"] = saved
    if f"{prefix}:text" not in st.session_state:
        st.session_state[f"{prefix}:text"] = saved["text"]
    for field, _, _, _ in LIST_FILTERS:
        st.session_state.setdefault(f"{prefix}:{field}", list(saved["filters"].get(field) or []))
    st.session_state.setdefault(f"{prefix}:year_from", saved["filters"].get("year_from"))
    st.session_state.setdefault(f"{prefix}:year_to", saved["filters"].get("year_to"))


def year_bounds(docs: list[Document]) -> tuple[int, int] | None:
    years = sorted({d.meta.year for d in docs if d.meta.year and d.status == "indexed"})
    return (years[0], years[-1]) if years and years[0] < years[-1] else None


def state_filters(prefix: str, docs: list[Document]) -> SearchFilters:
    """The filters as the widgets hold them now (read before the sidebar is drawn, so facets match the search)."""
    values = {field: list(st.session_state.get(f"{prefix}:{field}") or []) for field, _, _, _ in LIST_FILTERS}
    year_from, year_to = st.session_state.get(f"{prefix}:year_from"), st.session_state.get(f"{prefix}:year_to")
    picked, bounds = st.session_state.get(f"{prefix}:years"), year_bounds(docs)
    if picked is not None and bounds is not None:
        year_from, year_to = (None, None) if tuple(picked) == bounds else picked
    return SearchFilters(**values, year_from=year_from, year_to=year_to)


def publish_state(
    prefix: str, text: str, filters: SearchFilters, text_key: str = "q", **extra: str | list[str]
) -> None:
    """Write the page's state to the URL (and remember it for when the user comes back to the page)."""
    opening = st.session_state.get(f"{prefix}:opening")
    if opening is not None and opening["text"].strip() == text:
        del st.session_state[f"{prefix}:opening"]  # shown: from now on the widgets are the user's
    st.session_state[f"{prefix}:saved"] = {"text": text, "filters": filters.model_dump(), **extra}
    st.session_state[f"{prefix}:year_from"], st.session_state[f"{prefix}:year_to"] = filters.year_from, filters.year_to
    wanted = params_from_filters(filters, **{text_key: text}, **extra)
    if current_params() != {k: v if isinstance(v, list) else [v] for k, v in wanted.items()}:
        st.query_params.from_dict(wanted)


# --- sidebar filters ----------------------------------------------------------------------------------------------
def library_values(docs: list[Document]) -> dict[str, Counter]:
    """Documents per language, country, type and publisher in the whole library."""
    out: dict[str, Counter] = {
        "languages": Counter(),
        "countries": Counter(),
        "doc_types": Counter(),
        "publishers": Counter(),
    }
    for d in docs:
        if d.status != "indexed":
            continue
        for field, value in (
            ("languages", d.meta.language),
            ("countries", d.meta.country),
            ("doc_types", d.meta.doc_type),
            ("publishers", d.meta.publisher),
        ):
            if value:
                out[field][value] += 1
    return out


@st.cache_data(show_spinner=False, max_entries=4)
def countries_in_library(_kb: KnowledgeBase, version: str) -> dict[str, int]:
    """Documents per country discussed, cached per library version."""
    return _kb.countries_in_library()


def option_label(field: str, value: str, names: dict[str, str]) -> str:
    """What a filter option reads as. Stable across reruns (a widget's value is stored as this text)."""
    if field == "languages":
        return language_label(value)
    if field == "objectives":
        return f"{value} {names.get(value, '')}".strip()
    if field == "about":
        return country_label(value)
    return value


def facet_caption(counts: dict[str, int], limit: int = 6) -> str:
    shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    more = f" · +{len(counts) - limit} more" if len(counts) > limit else ""
    return " · ".join(f"{md_escape(v)} **{n}**" for v, n in shown) + more


def filters_sidebar(
    prefix: str, docs: list[Document], names: dict[str, str], facets: dict[str, dict[str, int]] | None,
    skip: tuple[str, ...] = (),
) -> None:  # fmt: skip
    """Sidebar filter widgets, each with document counts per value under it: among the query's best passages
    when there is a query, else in the whole library (``skip``: filters the page sets itself)."""
    library = library_values(docs)
    library["about"] = Counter(countries_in_library(get_kb(), library_version(docs)))
    sb = st.sidebar
    sb.subheader("Filters")
    sb.caption("Counts: documents among this query's best passages." if facets is not None
               else "Counts: documents in the library.")  # fmt: skip
    for field, _, facet, label in LIST_FILTERS:
        if field in skip:
            continue
        key = f"{prefix}:{field}"
        if field == "objectives":
            options = list(names)
        else:
            options = sorted(library[field], key=lambda v: (-library[field][v], v))
        options += [v for v in st.session_state.get(key, []) if v not in options]  # from a link: keep it visible
        counts = facets.get(facet, {}) if facets is not None else dict(library.get(field, {}))
        sb.multiselect(label, options, key=key, placeholder="any",
                       format_func=functools.partial(option_label, field, names=names))  # fmt: skip
        if counts:
            sb.caption(facet_caption(counts))
    bounds = year_bounds(docs)
    if bounds is not None:
        lo, hi = bounds
        if f"{prefix}:years" not in st.session_state:
            chosen = (
                st.session_state.get(f"{prefix}:year_from") or lo,
                st.session_state.get(f"{prefix}:year_to") or hi,
            )
            st.session_state[f"{prefix}:years"] = (max(lo, min(chosen[0], hi)), min(hi, max(chosen[1], lo)))
        sb.slider("Year", lo, hi, key=f"{prefix}:years", help="The full range means: any year, undated included.")
    sb.button("Clear filters", key=f"{prefix}:clear", on_click=_clear_filters, args=(prefix,))


def _clear_filters(prefix: str) -> None:
    for field, _, _, _ in LIST_FILTERS:
        st.session_state[f"{prefix}:{field}"] = []
    st.session_state[f"{prefix}:year_from"] = st.session_state[f"{prefix}:year_to"] = None
    st.session_state.pop(f"{prefix}:years", None)


# --- hit cards ----------------------------------------------------------------------------------------------------
def badges(language: str, labels: list[str], names: dict[str, str], about: list[str] | None = None) -> str:
    out = []
    if language:
        out.append(f":blue-badge[{md_escape(language.upper())}]")
    for code in about or []:
        out.append(f":orange-badge[:material/location_on: {md_escape(code)}]")
    for lab in labels:
        short = names.get(lab, "")
        text = f"{lab} {short}".strip()
        out.append(f":green-badge[{md_escape(text[:70])}]")
    return " ".join(out)


def source_line(title: str, publisher: str, year: int | None, country: str, doc_type: str, file: str, page: int) -> str:
    bits = [publisher or "publisher unknown", str(year or "n.d.")]
    bits += [b for b in (country, doc_type) if b]
    bits.append(f"{file}, p. {page}")
    return " · ".join(bits)


def hit_card(
    hit: Hit, n: int, names: dict[str, str], prefix: str, view: str | None = None, focus: str | None = None
) -> None:
    """One search result: title, source, language and objectives, the snippet, and a button that opens its page
    (in the drawer of ``view``, default ``prefix``). ``focus``: an objective whose trigger sentence is shown in
    full (the coverage cell view: why this passage counts for that objective)."""
    labels = sorted(hit.labels, key=lambda k: -hit.labels[k])
    with st.container(border=True, key=f"{prefix}-hit-{n}"):
        head, action = st.columns([5, 1], vertical_alignment="top")
        head.markdown(f"**{n}. {md_escape(hit.title or hit.file)}**")
        head.caption(
            md_escape(source_line(hit.title, hit.publisher, hit.year, hit.country, hit.doc_type, hit.file, hit.page))
        )
        tags = badges(hit.language, labels, names, hit.about)
        if tags:
            head.markdown(tags)
        action.button(
            f"Open p. {hit.page}",
            key=f"{prefix}:open:{n}",
            on_click=open_view,
            width="stretch",
            args=(
                view or prefix,
                ViewRequest(
                    hit.doc_id, hit.file, hit.title, hit.page, bold_pieces(hit.snippet), hit.text, f"Result {n}"
                ),
            ),
        )
        st.markdown(snippet_markdown(hit.snippet or hit.text[:400]))
        if focus and focus in hit.labels:
            because = (
                "confirmed by staff"
                if hit.label_reviews.get(focus) == "confirmed"
                else f"because: “{md_escape(hit.label_triggers.get(focus, '')[:400])}”"
            )
            st.markdown(f":green-badge[{md_escape(focus)}] counts for this objective {because}")
        if labels:
            why_tagged(hit.labels, hit.label_triggers, hit.label_reviews, names, f"{prefix}-why-{n}")


def why_tagged(
    labels: dict[str, float], triggers: dict[str, str], reviews: dict[str, str], names: dict[str, str], key: str
) -> None:
    """Each objective a passage counts for, with the sentence that made it count (or staff's confirmation)."""
    with st.expander("Why these objectives", icon=":material/help:", key=key):
        for lab in sorted(labels, key=lambda k: -labels[k]):
            who = " · confirmed by staff" if reviews.get(lab) == "confirmed" else f" · {labels[lab]:.0%}"
            sentence = triggers.get(lab, "")
            quote = f": “{md_escape(sentence[:400])}”" if sentence else ""
            st.markdown(f"**{md_escape(lab)}** {md_escape(names.get(lab, ''))}{who}{quote}")


def citation_request(c, passage: str = "") -> ViewRequest:
    return ViewRequest(c.doc_id, c.file, c.title, c.page, quote_pieces(c.quote), passage or c.quote, f"[{c.n}]")


# --- the page viewer ----------------------------------------------------------------------------------------------
def open_view(prefix: str, request: ViewRequest) -> None:
    st.session_state[f"{prefix}:view"] = request
    st.session_state[f"{prefix}:view_page"] = request.page


def close_view(prefix: str) -> None:
    st.session_state.pop(f"{prefix}:view", None)


def _turn(prefix: str, delta: int, last: int) -> None:
    key = f"{prefix}:view_page"
    st.session_state[key] = max(1, min(last, st.session_state.get(key, 1) + delta))


def show_view(kb: KnowledgeBase, prefix: str) -> bool:
    """The open page, if any, in a drawer on the right: the PDF page with the passage highlighted (else the
    passage text). Dismissing the drawer closes it for good. True when a page is open."""
    request: ViewRequest | None = st.session_state.get(f"{prefix}:view")
    if request is None:
        return False
    title = f"{request.label} · {request.title or request.file}" if request.label else request.title or request.file
    title = title if len(title) <= 70 else title[:69] + "…"
    drawer = st.dialog(title, width=820, position="right", on_dismiss=functools.partial(close_view, prefix))
    drawer(_view_body)(kb, prefix, request)
    return True


def _view_body(kb: KnowledgeBase, prefix: str, request: ViewRequest) -> None:
    doc = kb.document(request.doc_id)
    path = next((Path(p) for p in (doc.paths if doc else []) if Path(p).exists()), None)
    if doc is not None:
        m = doc.meta
        st.caption(md_escape(source_line(m.title, m.publisher, m.year, m.country, m.doc_type, doc.file, request.page)))
    if path is None:
        st.warning("The file is no longer in the library; showing the passage only.")
        st.markdown(md_escape(request.passage))
        return
    page = st.session_state.get(f"{prefix}:view_page", request.page)
    if not is_pdf(path):
        st.caption(f"{path.name} is not a PDF: the passage is shown as text (page {request.page}).")
        with st.container(border=True):
            st.markdown(highlighted_passage(request))
        return
    last = page_count(path)
    page = max(1, min(page, last))
    boxes = highlight_boxes(path, page, request.pieces) if page == request.page else []
    nav = st.columns([1, 2, 1], vertical_alignment="center")
    nav[0].button(
        "◀ Previous", key=f"{prefix}:prev", on_click=_turn, args=(prefix, -1, last), disabled=page <= 1, width="stretch"
    )
    status = f"page {page} of {last}"
    if page == request.page:
        status += " · passage outlined" if boxes else " · passage not located on the page image"
    nav[1].markdown(f"<div style='text-align:center'>{status}</div>", unsafe_allow_html=True)
    nav[2].button(
        "Next ▶", key=f"{prefix}:next", on_click=_turn, args=(prefix, 1, last), disabled=page >= last, width="stretch"
    )
    render_pdf_page(path, page, boxes, key=f"{prefix}:pdf:{request.doc_id}:{page}")
    with st.expander("Passage text", expanded=page == request.page and not boxes):
        st.markdown(highlighted_passage(request))
    with path.open("rb") as fh:
        st.download_button(
            "Download the whole PDF",
            fh.read(),
            file_name=path.name,
            mime="application/pdf",
            on_click="ignore",
            key=f"{prefix}:download-pdf",
        )


def render_pdf_page(path: Path, page: int, boxes: list[dict], key: str) -> None:
    from streamlit_pdf_viewer import pdf_viewer

    try:
        data = single_page(path, page)
    except Exception:  # a damaged file: let the viewer try the whole document
        data = path.read_bytes()
        boxes = [dict(b, page=page) for b in boxes]
    pdf_viewer(
        data,
        width="100%",
        annotations=boxes,
        annotation_outline_size=2,
        render_text=True,
        key=key,
        scroll_to_annotation=1 if boxes else None,
    )


def highlighted_passage(request: ViewRequest) -> str:
    text = request.passage
    marks = []
    for piece in request.pieces:
        i = text.find(piece)
        if i >= 0:
            marks.append((i, i + len(piece)))
    out, pos = [], 0
    for a, b in sorted(marks):
        if a < pos:
            continue
        out += [md_escape(text[pos:a]), f"**{md_escape(text[a:b])}**"]
        pos = b
    out.append(md_escape(text[pos:]))
    return "".join(out)


# --- editors ------------------------------------------------------------------------------------------------------
def editor_unlocked(kb: KnowledgeBase, where: str) -> bool:
    """True when editing is open, or the editor password was given in this session."""
    if not editor_required(kb.settings) or st.session_state.get("editor:ok"):
        return True
    given = st.text_input(
        "Editor password",
        type="password",
        key=f"editor:pw:{where}",
        help="Set by KB_EDITOR_PASSWORD. Searching and asking never need it.",
    )
    if given and check_password(kb.settings, given):
        st.session_state["editor:ok"] = True
        return True
    if given:
        st.error("Wrong password.")
    else:
        st.info("Adding, correcting and removing documents needs the editor password.")
    return False


# --- alignment ----------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Counting passages per objective…", max_entries=16)
def coverage_table(_kb: KnowledgeBase, by: str, version: str) -> dict:
    """``KnowledgeBase.coverage`` as plain data, cached per library version (a scroll over every passage)."""
    return _kb.coverage(by=by).model_dump()


def document_objectives(kb: KnowledgeBase, version: str, top: int = 3) -> dict[str, list[str]]:
    """file -> its most frequent framework labels."""
    cov = coverage_table(kb, "document", version)
    per_file: dict[str, Counter] = {}
    for label, cells in cov["counts"].items():
        for file, n in cells.items():
            per_file.setdefault(file, Counter())[label] = n
    return {file: [lab for lab, _ in c.most_common(top)] for file, c in per_file.items()}


def flash(key: str, message: str | None = None) -> None:
    """A message that survives the rerun after an action (shown once)."""
    if message is not None:
        st.session_state[f"flash:{key}"] = message
    elif text := st.session_state.pop(f"flash:{key}", None):
        st.success(text)
