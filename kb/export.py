"""Exports a policymaker can take away: hits as CSV, an answer as Markdown with its references, and the cited
documents as BibTeX and RIS for a reference manager."""

from __future__ import annotations

import csv
import io
import re
import unicodedata

from kb.records import Answer, Citation, Comparison, Document, Hit

HIT_COLUMNS = (
    "rank",
    "title",
    "publisher",
    "year",
    "country",
    "language",
    "doc_type",
    "file",
    "page",
    "pages",
    "score",
    "objectives",
    "countries_discussed",
    "snippet",
    "text",
    "doc_id",
    "chunk_id",
)
REPORT_TYPES = {
    "report",
    "strategy",
    "guideline",
    "factsheet",
    "specification",
    "survey",
    "faq",
    "consultation",
    "classification",
}


def plain(text: str) -> str:
    """Snippet text without the **match** markers."""
    return text.replace("**", "")


def hits_csv(hits: list[Hit]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HIT_COLUMNS)
    for rank, h in enumerate(hits, 1):
        writer.writerow(
            [
                rank,
                h.title,
                h.publisher,
                h.year or "",
                h.country,
                h.language,
                h.doc_type,
                h.file,
                h.page,
                f"{h.pages[0]}-{h.pages[1]}",
                h.score,
                ";".join(sorted(h.labels, key=lambda k: -h.labels[k])),
                ";".join(h.about),
                plain(h.snippet),
                h.text,
                h.doc_id,
                h.chunk_id,
            ]
        )
    return out.getvalue()


def _reference(c: Citation) -> str:
    who = c.publisher or "n.p."
    return f"[{c.n}] {c.title or c.file}. {who}, {c.year or 'n.d.'}. {c.file}, p. {c.page}."


def answer_markdown(answer: Answer, label_names: dict[str, str] | None = None) -> str:
    names = label_names or {}
    lines = [f"# {answer.question}", ""]
    if answer.abstained:
        lines += ["> **No sufficient evidence.**", ""]
    lines += [answer.answer, ""]
    if answer.citations:
        lines += ["## References", ""]
        for c in answer.citations:
            lines.append(f"{_reference(c)}  ")
            lines.append(f"   > “{c.quote.strip()}”")
            lines.append("")
    if answer.abstained and answer.evidence:
        lines += ["## Closest passages (not sufficient to answer)", ""]
        for h in answer.evidence:
            lines.append(
                f"- {h.title or h.file} ({h.publisher or 'n.p.'}, {h.year or 'n.d.'}), {h.file}, p. {h.page}: "
                f"{plain(h.snippet)}"
            )
        lines.append("")
    if answer.objectives:
        lines += ["## Strategic objectives", ""]
        lines += [f"- {o} {names.get(o, '')}".rstrip() for o in answer.objectives]
        lines.append("")
    cov = answer.coverage or {}
    if cov:
        searched = (
            f"{cov.get('documents', '?')} documents, {cov.get('passages', '?')} passages; languages "
            f"{', '.join(cov.get('languages', [])) or '-'}; countries {', '.join(cov.get('countries', [])) or '-'}"
        )
        if cov.get("years"):
            searched += f"; years {cov['years'][0]}–{cov['years'][1]}"
        lines += ["## What was searched", "", searched, ""]
    lines.append(f"_Mode: {answer.mode}. Dropped unsupported claims: {answer.dropped_claims}._")
    return "\n".join(lines).rstrip() + "\n"


COMPARISON_COLUMNS = ("country", "country_name", "region_member", "evidence", "passages_about_country", "quote",
                      "title", "publisher", "year", "language", "file", "page", "objectives", "note")  # fmt: skip


def comparison_csv(comparison: Comparison) -> str:
    """One line per quoted sentence, and one line for each country without evidence (saying so)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COMPARISON_COLUMNS)
    for row in comparison.rows:
        head = [row.country, row.name, "yes" if row.region_member else "no", "yes" if row.found else "no",
                row.passages]  # fmt: skip
        labels = ";".join(row.labels)
        if not row.citations:
            note = f"no evidence in the library: {row.note}".rstrip(": ")
            writer.writerow([*head, "", "", "", "", "", "", "", labels, note])
        for c in row.citations:
            writer.writerow([*head, c.quote, c.title, c.publisher, c.year or "", c.language, c.file, c.page, labels,
                             row.note])  # fmt: skip
    return out.getvalue()


def comparison_markdown(comparison: Comparison, label_names: dict[str, str] | None = None) -> str:
    """A brief: one section per country with its quoted evidence numbered, then the references."""
    names = label_names or {}
    lines = [f"# {comparison.question}", "", "Evidence per country from the library, quoted in the original language.",
             ""]  # fmt: skip
    references: list[str] = []
    numbers: dict[tuple[str, int, str], int] = {}
    for row in comparison.rows:
        lines += [f"## {row.name} ({row.country})", ""]
        if not row.found:
            lines += [f"_No evidence in the library._ {row.note}", ""]
            continue
        for c in row.citations:
            key = (c.doc_id, c.page, c.quote)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                references.append(_reference(c.model_copy(update={"n": numbers[key]})))
            lines.append(f"- “{c.quote.strip()}” [{numbers[key]}] ({c.language or '?'})")
        if row.labels:
            lines.append("")
            lines.append("Objectives: " + "; ".join(f"{lab} {names.get(lab, '')}".strip() for lab in row.labels))
        lines.append("")
    if references:
        lines += ["## References", "", *[f"{r}  " for r in references], ""]
    return "\n".join(lines).rstrip() + "\n"


# --- references ------------------------------------------------------------------------------------------------
def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def cite_keys(docs: list[Document]) -> dict[str, str]:
    """Readable, unique citation keys: publisher + year + first title word (``WHO2021Ethics``)."""
    keys: dict[str, str] = {}
    used: set[str] = set()
    for d in docs:
        m = d.meta
        pub = re.sub(r"[^A-Za-z0-9]", "", _ascii(m.publisher))[:30] or "doc"
        word = next((w for w in re.findall(r"[A-Za-z]{4,}", _ascii(m.title))), "")
        base = f"{pub}{m.year or 'nd'}{word.capitalize()}"
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}{chr(ord('a') + n - 2)}" if n <= 27 else f"{base}{n}"
        used.add(key)
        keys[d.doc_id] = key
    return keys


def _bib_escape(text: str) -> str:
    text = text.replace("\\", "\\textbackslash{}")
    text = re.sub(r"([&%$#_{}])", r"\\\1", text)
    return text.replace("~", "\\textasciitilde{}").replace("^", "\\textasciicircum{}")


def bibtex(docs: list[Document]) -> str:
    entries = []
    keys = cite_keys(docs)
    for d in docs:
        m = d.meta
        kind = "techreport" if m.doc_type in REPORT_TYPES else "misc"
        fields = [("title", f"{{{_bib_escape(m.title or d.file)}}}")]
        if m.publisher:
            # a corporate author: double braces keep BibTeX from splitting it into first and last names
            fields.append(("author", f"{{{{{_bib_escape(m.publisher)}}}}}"))
            fields.append(("institution" if kind == "techreport" else "publisher", f"{{{_bib_escape(m.publisher)}}}"))
        if m.year:
            fields.append(("year", f"{{{m.year}}}"))
        if m.url:
            fields.append(("url", f"{{{m.url}}}"))
        if m.language:
            fields.append(("language", f"{{{m.language}}}"))
        notes = [x for x in (m.doc_type, m.country, d.file) if x]
        if notes:
            fields.append(("note", f"{{{_bib_escape('; '.join(notes))}}}"))
        body = ",\n".join(f"  {k} = {v}" for k, v in fields)
        entries.append(f"@{kind}{{{keys[d.doc_id]},\n{body}\n}}")
    return "\n\n".join(entries) + ("\n" if entries else "")


def ris(docs: list[Document]) -> str:
    records = []
    for d in docs:
        m = d.meta
        kind = "STAT" if m.doc_type == "law" else "RPRT" if m.doc_type in REPORT_TYPES else "GEN"
        tags = [("TY", kind), ("TI", m.title or d.file)]
        if m.publisher:
            tags += [("AU", m.publisher), ("PB", m.publisher)]
        if m.year:
            tags.append(("PY", str(m.year)))
        if m.url:
            tags.append(("UR", m.url))
        if m.language:
            tags.append(("LA", m.language))
        if m.country:
            tags.append(("CY", m.country))
        if m.doc_type:
            tags.append(("KW", m.doc_type))
        tags += [("N1", f"file: {d.file}"), ("ER", "")]
        records.append("\n".join(f"{tag}  - {value}" for tag, value in tags))
    return "\n\n".join(records) + ("\n" if records else "")


def cited_documents(doc_ids: list[str], docs: list[Document]) -> list[Document]:
    """The documents behind these ids, in first-cited order, each once."""
    by_id = {d.doc_id: d for d in docs}
    seen: list[str] = []
    for doc_id in doc_ids:
        if doc_id in by_id and doc_id not in seen:
            seen.append(doc_id)
    return [by_id[i] for i in seen]
