"""Countries a passage discusses, recognised in the Region's languages ("Estonia", "Estland", "l'Estonie",
"Эстония", "the Estonian e-health system", "EE").

Country names come from CLDR (Babel) in every language of ``countries.yaml``; that file adds the names CLDR lacks,
adjectives and demonyms, ISO codes that are safe to read in text, and the contexts where a country word means a
language ("in French") or an organisation's seat ("Geneva, Switzerland"). Matching is a dictionary lookup over
folded word n-grams, so tagging the whole library takes seconds and re-tagging never needs the vectors.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import yaml
from babel import Locale

DATA_FILE = Path(__file__).with_name("countries.yaml")
WORD = re.compile(r"[^\W\d_]+(?:[.][^\W\d_]\b[.]?)*", re.UNICODE)  # words; "U.K." and "U.S.A." stay one token
VOWELS = "aeiouyæøåäöüéèêíóúаеиоуыэюяйьіїєαεηιουωάέήίόύώ"
INFLECTION_LETTERS = set(VOWELS) | set("snmrtjхмшгвςν")
MAX_NGRAM = 6
CONJUNCTIONS = {"and", "or", "et", "ou", "und", "oder", "og", "eller", "y", "o", "e", "ed"}
MAX_INFLECTION = 3  # letters an inflected name or adjective may add ("Deutschlands", "norske", "Эстонии")


def fold(text: str) -> str:
    """Lower case without accents, so 'Österreich', 'OSTERREICH' and 'osterreich' meet."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[tuple[str, int, int]]:
    """(surface, start, end) of every word; apostrophes and hyphens split ("l'Estonie" → l, Estonie)."""
    return [(m.group(0).rstrip("."), m.start(), m.start() + len(m.group(0).rstrip("."))) for m in WORD.finditer(text)]


@dataclass(frozen=True)
class Mention:
    """One place where a passage names a country: the trigger a policymaker can check."""

    code: str
    start: int
    end: int
    surface: str
    kind: str  # name, adjective, code


class CountryRecognizer:
    def __init__(self, data_file: Path = DATA_FILE) -> None:
        self.data_file = data_file
        self.data = yaml.safe_load(data_file.read_text(encoding="utf-8"))
        codes = [*self.data["region_members"], *self.data["aliases"], *self.data["adjectives"]]
        if not all(isinstance(c, str) for c in codes):  # YAML reads a bare NO (Norway) as false
            raise ValueError(f'{data_file}: quote every country code (write "NO", not NO)')

    @cached_property
    def fingerprint(self) -> str:
        """Changes when the data changes: stored passages are then re-tagged."""
        digest = hashlib.sha256(self.data_file.read_bytes()).hexdigest()[:10]
        return f"countries{self.data.get('version', 0)}-{digest}"

    @cached_property
    def region_members(self) -> frozenset[str]:
        return frozenset(self.data["region_members"])

    @cached_property
    def _regions(self) -> set[tuple[str, ...]]:
        out = set()
        for phrase in self.data.get("region_phrases", []):
            key = tuple(fold(w) for w, _, _ in words(phrase))
            out.add(key)
            if key[0] == "the":
                out.add(key[1:])
        return out

    @cached_property
    def _ambiguous(self) -> set[str]:
        return {fold(n) for n in self.data["ambiguous_names"]}

    @cached_property
    def _names(self) -> tuple[dict[tuple[str, ...], str], dict[str, str]]:
        """Folded name n-gram → code, and folded single-word stem → code (for inflected forms)."""
        skip, ambiguous = set(self.data["not_countries"]), self._ambiguous
        names: dict[tuple[str, ...], set[str]] = {}

        def add(name: str, code: str) -> None:
            key = tuple(fold(w) for w, _, _ in words(name.replace("&", " and ")))
            if key and fold(name) not in ambiguous and (len(key) > 1 or len(key[0]) >= 4 or name.isupper()):
                names.setdefault(key, set()).add(code)

        for language in self.data["name_languages"]:
            for code, name in Locale.parse(language).territories.items():
                if len(code) == 2 and code.isalpha() and code not in skip:
                    add(name, code)
        for code, forms in self.data["aliases"].items():
            for form in forms:
                add(form, code)
        exact = {key: next(iter(codes)) for key, codes in names.items() if len(codes) == 1}
        stems: dict[str, set[str]] = {}
        for key, code in exact.items():  # case endings of Cyrillic and Greek names ("Эстонии", "Германию")
            if len(key) == 1 and len(key[0]) >= 5 and not key[0].isascii() and not _latin(key[0]):
                stem = key[0].rstrip(VOWELS)
                if len(stem) >= 4:
                    stems.setdefault(stem, set()).add(code)
        return exact, {stem: next(iter(codes)) for stem, codes in stems.items() if len(codes) == 1}

    @cached_property
    def _adjectives(self) -> tuple[dict[tuple[str, ...], str], dict[str, str]]:
        """Folded adjective n-gram → code (exact forms), and folded stem → code (forms written with '*')."""
        exact: dict[tuple[str, ...], str] = {}
        stems: dict[str, str] = {}
        for code, forms in self.data["adjectives"].items():
            for form in forms:
                key = tuple(fold(w) for w, _, _ in words(form.rstrip("*")))
                if form.endswith("*") and len(key) == 1:
                    stems[key[0]] = str(code)
                elif key:
                    exact[key] = str(code)
        return exact, stems

    @cached_property
    def _context(self) -> tuple[set[str], set[str], set[str], set[str], set[str]]:
        d = self.data
        return (
            {fold(w) for w in d["language_before"]},
            {fold(w) for w in d["language_after"]},
            {fold(w) for w in d["seat_cities"]},
            set(d["alpha2_codes"]),
            set(d["alpha3_codes"]),
        )

    @cached_property
    def _alpha3(self) -> dict[str, str]:
        from babel.core import get_global

        allowed = self._context[4]
        return {alias: codes[0] for alias, codes in get_global("territory_aliases").items() if alias in allowed}

    # --- recognition ---------------------------------------------------------------------------------------
    def mentions(self, text: str) -> list[Mention]:
        """Every country word of the text that means the country, in text order. Not counted: a language
        ("in French", "French and German versions"), a seat ("Geneva, Switzerland"), a citation's place of
        publication ("Luxembourg: Publications Office"), a currency ("US$"), a region ("Latin America")."""
        tokens = words(text)
        folded = [fold(w) for w, _, _ in tokens]
        names, name_stems = self._names
        adjectives, adjective_stems = self._adjectives
        before, after, seats, alpha2, _ = self._context
        found: list[Mention] = []
        language_at = -9  # token index where the last language name ended ("in French and German")
        i = 0
        while i < len(tokens):
            match = self._match_at(tokens, folded, i, names, name_stems, adjectives, adjective_stems, alpha2)
            if match is None:
                i += 1
                continue
            code, n, kind = match
            start, end = tokens[i][1], tokens[i + n - 1][2]
            prev = folded[i - 1] if i else ""
            nxt = folded[i + n] if i + n < len(tokens) else ""
            listed = prev in CONJUNCTIONS and language_at == i - 1
            as_language = kind == "adjective" and (prev in before or nxt in after or listed)
            if as_language:
                language_at = i + n
            after_mention = bool(found) and found[-1].end == tokens[i - 1][2] if i else False
            as_seat = (
                kind == "name" and i and prev in seats and not after_mention and "," in text[tokens[i - 1][2] : start]
            )  # "Geneva, Switzerland"; but "Luxembourg, Singapore" is a list
            as_currency = kind == "code" and text[end : end + 1] == "$"  # US$
            as_imprint = kind == "name" and n == 1 and folded[i] in seats and text[end : end + 1] == ":"
            if not (as_language or as_seat or as_currency or as_imprint or kind == "region"):
                found.append(Mention(code, start, end, text[start:end], kind))
            i += n
        return found

    @cached_property
    def _compound_names(self) -> dict[str, str]:
        names, _ = self._names
        shortest = int(self.data.get("compound_min_letters", 5))
        skip = {fold(n) for n in self.data.get("compound_exceptions", [])}
        return {key[0]: code for key, code in names.items() if len(key) == 1 and len(key[0]) >= shortest and
                key[0].isalpha() and key[0] not in skip}  # fmt: skip

    def _compound(self, token: str) -> str | None:
        for cut in range(3, len(token) - 4):  # the head word before the name has at least 3 letters
            code = self._compound_names.get(token[cut:])
            if code:
                return code
        return None

    def _match_at(self, tokens, folded, i, names, name_stems, adjectives, adjective_stems, alpha2):
        surface = tokens[i][0]
        capital = surface[:1].isupper()
        for n in range(min(MAX_NGRAM, len(tokens) - i), 0, -1):
            key = tuple(folded[i : i + n])
            if key in self._regions:
                return "", n, "region"
            if capital and key in names:
                return names[key], n, "name"
            if capital and key in adjectives:  # exact forms are English: always capitalised
                return adjectives[key], n, "adjective"
        token = folded[i]
        if surface.isupper() and 2 <= len(surface) <= 3:
            if len(surface) == 2 and surface in alpha2 and not _shouting(tokens, i):
                return {"UK": "GB", "EL": "GR"}.get(surface, surface), 1, "code"
            if len(surface) == 3 and surface in self._alpha3 and not _shouting(tokens, i):
                return self._alpha3[surface], 1, "code"
        compound = self._compound(token) if capital else None
        if compound:  # Helsenorge, Norddeutschland
            return compound, 1, "name"
        genitive = token.endswith("s") and (token[:-1],) in names and token not in self._ambiguous
        if capital and genitive:  # Norges, Deutschlands, Frankreichs
            return names[(token[:-1],)], 1, "name"
        for cut in range(0, MAX_INFLECTION + 1):
            stem, ending = (token[:-cut], token[-cut:]) if cut else (token, "")
            if len(stem) < 4:
                break
            if not set(ending) <= INFLECTION_LETTERS:
                continue
            if stem in adjective_stems:
                return adjective_stems[stem], 1, "adjective"
            if capital and stem in name_stems and cut <= 2:
                return name_stems[stem], 1, "name"
        return None

    def countries(self, text: str) -> list[str]:
        """The ISO 3166-1 alpha-2 codes of the countries the text discusses, sorted."""
        return sorted({m.code for m in self.mentions(text)})

    def triggers(self, text: str) -> dict[str, str]:
        """Each country's first mention as written ("EE" → "l'Estonie"), for showing why a passage counts."""
        out: dict[str, str] = {}
        for m in self.mentions(text):
            out.setdefault(m.code, m.surface)
        return out


def _latin(word: str) -> bool:
    return any("LATIN" in unicodedata.name(c, "") for c in word)


def _shouting(tokens: list[tuple[str, int, int]], i: int) -> bool:
    """An all-capitals run (a title, a heading): its three-letter words are words, not codes."""
    around = [w for w, _, _ in tokens[max(0, i - 2) : i + 3] if len(w) > 3]
    return bool(around) and all(w.isupper() for w in around)


@lru_cache(maxsize=8)
def country_name(code: str, language: str = "en") -> str:
    """The country's CLDR name in a language ("EE", "fr" → "Estonie"); the code itself when unknown."""
    try:
        return Locale.parse(language or "en").territories.get(code, code)
    except (ValueError, TypeError):
        return Locale.parse("en").territories.get(code, code)
