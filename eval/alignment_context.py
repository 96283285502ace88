"""The document context of each labelled passage (``eval/data/alignment_context.jsonl``), so that the tagger can be
trained and judged on passages read in their document's light, as it reads library passages.

Made from a library of the shared corpus: each labelled passage is matched to the indexed passage of its file that
holds it, and that passage's title, document type, section heading and neighbours are kept. Rerun after a change of
the chunker or of the labelled file:

    python -m eval.alignment_context --home DIR   # DIR: a library holding the shared corpus
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from alignment.context import PassageContext, document_contexts
from alignment.tagger import read_labelled

DEFAULT_OUT = Path(__file__).parent / "data" / "alignment_context.jsonl"
PROBE_CHARS = 60  # a labelled passage is found in the indexed passage that holds one of its 60-character probes


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub("[\ufffe\u00ad]", "", text)).strip().lower()


def _holding(text: str, passages: list[dict]) -> int | None:
    """Index of the indexed passage sharing the longest probe (start, middle or end) with the labelled text."""
    t = _norm(text)
    mid = len(t) // 2
    probes = (t[:PROBE_CHARS], t[mid : mid + PROBE_CHARS], t[-PROBE_CHARS:])
    best, best_len = None, 0
    for i, p in enumerate(passages):
        held = _norm(p["text"])
        found = max((len(k) for k in probes if k and k in held), default=0)
        if found > best_len:
            best, best_len = i, found
    return best


def build(home: Path, labelled: Path, out: Path) -> tuple[int, int]:
    from kb.service import KnowledgeBase
    from kb.settings import Settings

    kb = KnowledgeBase(Settings(home=home))
    try:
        by_file: dict[str, list[dict]] = defaultdict(list)
        for point in kb.store.scroll():
            by_file[point.payload["file"]].append(point.payload)
    finally:
        kb.close()
    contexts: dict[str, tuple[list[dict], list[PassageContext]]] = {}
    for file, passages in by_file.items():
        passages.sort(key=lambda p: p["position"])
        contexts[file] = (passages, document_contexts(passages))
    rows, found = [], 0
    for item in read_labelled(labelled):
        passages, ctx = contexts.get(item.file, ([], []))
        i = _holding(item.text, passages)
        if i is None:
            continue
        found += 1
        rows.append(json.dumps({"id": item.id, **ctx[i].model_dump()}, ensure_ascii=False))
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return found, len(read_labelled(labelled))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True, help="a library holding the shared corpus")
    parser.add_argument("--labelled", type=Path, default=DEFAULT_OUT.with_name("alignment_labels.jsonl"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    found, total = build(args.home, args.labelled, args.out)
    print(f"{found} of {total} labelled passages found in the library; contexts written to {args.out}")


if __name__ == "__main__":
    main()
