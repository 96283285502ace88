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
from babel import Locale, UnknownLocaleError

from kb.records import country_code

DATA_FILE = Path(__file__).with_name("countries.yaml")
WORD = re.compile(r"[^\W\d_]+(?:[.][^\W\d_]\b[.]?)*", re.UNICODE)  # words; "U.K." and "U.S.A." stay one token
VOWELS = "aeiouyæøåäöüéèêíóúаеиоуыэюяйьіїєαεηιουωάέήίόύώ"
INFLECTION_LETTERS = set(VOWELS) | set("snmrtjhqcхмшгвςν")  # tedeschi, grecque
MAX_NGRAM = 6
RULES_VERSION = 2  # bump when the matching logic below changes: stored passages are re-tagged
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
        values = [*self.data["aliases"], *self.data["adjectives"]]
        values += [v for item in self.data.values() if isinstance(item, list) for v in item]
        values += [v for table in ("aliases", "adjectives") for forms in self.data[table].values() for v in forms]
        if not all(isinstance(v, str) for v in values):  # YAML reads a bare NO (Norway) or "on" as a boolean
            raise ValueError(f'{data_file}: quote every country code and word (write "NO", not NO)')

    @cached_property
    def fingerprint(self) -> str:
        """Changes when the data, the matching rules or CLDR change: stored passages are then re-tagged."""
        import babel

        digest = hashlib.sha256(self.data_file.read_bytes()).hexdigest()[:10]
        return f"countries{self.data.get('version', 0)}.{RULES_VERSION}-{digest}-cldr{babel.__version__}"

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

        def add(name: str, code: str, alias: bool = False) -> None:
            key = tuple(fold(w) for w, _, _ in words(name.replace("&", " and ")))
            if key and (alias or fold(name) not in ambiguous) and (len(key) > 1 or len(key[0]) >= 4 or name.isupper()):
                names.setdefault(key, set()).add(code)

        for language in self.data["name_languages"]:
            for code, name in Locale.parse(language).territories.items():
                if len(code) == 2 and code.isalpha() and code not in skip:
                    add(name, code)
        for code, forms in self.data["aliases"].items():
            for form in forms:
                add(form, code, alias=True)
        exact = {key: next(iter(codes)) for key, codes in names.items() if len(codes) == 1}
        stems: dict[str, set[str]] = {}
        for key, code in exact.items():  # case endings of Cyrillic and Greek names ("Эстонии", "Германию")
            if len(key) == 1 and len(key[0]) >= 5 and not key[0].isascii() and not _latin(key[0]):
                stem = key[0].rstrip(VOWELS)
                if len(stem) >= 3:  # "Дан" of "Дания": "в Дании"
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

    def _folded(self, key: str) -> set[str]:
        return {fold(w) for w in self.data[key]}

    @cached_property
    def _language_markers(self) -> set[str]:
        return self._folded("language_before")

    @cached_property
    def _language_prepositions(self) -> set[str]:
        return self._folded("language_prepositions")

    @cached_property
    def _language_nouns(self) -> set[str]:
        return self._folded("language_after")

    @cached_property
    def _seats(self) -> set[tuple[str, ...]]:
        return {tuple(fold(w) for w, _, _ in words(city)) for city in self.data["seat_cities"]}

    @cached_property
    def _language_words(self) -> set[str]:
        return self._folded("language_names")

    @cached_property
    def _alpha2(self) -> set[str]:
        return set(self.data["alpha2_codes"])

    @cached_property
    def _alpha3(self) -> dict[str, str]:
        from babel.core import get_global

        allowed = set(self.data["alpha3_codes"])
        return {alias: codes[0] for alias, codes in get_global("territory_aliases").items() if alias in allowed}

    # --- recognition ---------------------------------------------------------------------------------------
    def mentions(self, text: str) -> list[Mention]:
        """Every country word of the text that means the country, in text order. Not counted: a language
        ("in French", "English, French and Russian versions", "la version française"), a seat ("Geneva,
        Switzerland"), a citation's place of publication ("Luxembourg: Publications Office"), a currency ("US$"),
        a quantity or company form ("5 GB", "GmbH & Co. KG"), a region ("Latin America", "Pan American")."""
        tokens = words(text)
        folded = [fold(w) for w, _, _ in tokens]
        found: list[Mention] = []
        language_at = -9  # token index just after the last language name ("in French and German")
        i = 0
        while i < len(tokens):
            match = self._match_at(tokens, folded, i)
            if match is None:
                if folded[i] in self._language_words:  # English, anglais: always the language
                    language_at = i + 1
                i += 1
                continue
            code, n, kind = match
            start, end = tokens[i][1], tokens[i + n - 1][2]
            if kind == "adjective" and self._as_language(text, tokens, folded, i, n, language_at):
                language_at = i + n
            elif kind != "region" and not self._other_sense(text, tokens, folded, i, kind, found, end):
                found.append(Mention(code, start, end, text[start:end], kind))
            i += n
        return found

    def _as_language(self, text, tokens, folded, i: int, n: int, language_at: int) -> bool:
        """An adjective that names a language: after a marker ("auf", "på", "version"), after "in"/"en" when
        the phrase ends there ("in French." but not "in Danish hospitals"), before "version", or listed after
        another language ("in English, French and Russian")."""
        prev = folded[i - 1] if i else ""
        between = text[tokens[i - 1][2] : tokens[i][1]] if i else ""
        listed = (language_at == i - 1 and prev in CONJUNCTIONS) or (language_at == i and "," in between)
        if prev in self._language_markers or listed or self._language_follows(text, tokens, folded, i + n):
            return True
        return prev in self._language_prepositions and self._phrase_ends(text, tokens, folded, i + n)

    def _language_follows(self, text, tokens, folded, j: int) -> bool:
        """'French version', 'French and German versions': a language noun after the adjective or its list."""
        while j < len(tokens):
            if folded[j] in self._language_nouns:
                return True
            if folded[j] in CONJUNCTIONS or self._is_language_word(folded[j]):
                j += 1
                continue
            return False
        return False

    def _phrase_ends(self, text, tokens, folded, j: int) -> bool:
        """After 'in French': the sentence or clause ends, or another language follows ('in French and
        German.'); a noun means the adjective describes it ('in Danish hospitals')."""
        while True:
            rest = text[tokens[j - 1][2] :].lstrip()
            if j >= len(tokens) or not rest or rest[0] in ".,;:)!?/":
                return True
            if folded[j] in CONJUNCTIONS and j + 1 < len(tokens) and self._is_language_word(folded[j + 1]):
                j += 2
                continue
            return False

    def _is_language_word(self, word: str) -> bool:
        return (word,) in self._adjectives[0] or word in self._language_words or self._adjective_stem(word) is not None

    def _adjective_stem(self, token: str) -> str | None:
        """The code of an inflected adjective written with '*' in the data ("norske", "française", "tedeschi")."""
        stems = self._adjectives[1]
        for cut in range(0, MAX_INFLECTION + 1):
            stem, ending = (token[:-cut], token[-cut:]) if cut else (token, "")
            if len(stem) < 4:
                return None
            if stem in stems and set(ending) <= INFLECTION_LETTERS:
                return stems[stem]
        return None

    def _other_sense(self, text, tokens, folded, i: int, kind: str, found: list[Mention], end: int) -> bool:
        """A country word that stands for something else here: a seat, an imprint, a currency, a quantity."""
        start = tokens[i][1]
        if kind == "name":
            after_mention = bool(found) and i > 0 and found[-1].end == tokens[i - 1][2]
            seat = any(tuple(folded[i - k : i]) in self._seats for k in range(1, 4) if i - k >= 0)
            if seat and not after_mention and "," in text[tokens[i - 1][2] : start]:
                return True  # "Geneva, Switzerland"; but "Luxembourg, Singapore" is a list
            return (folded[i],) in self._seats and text[end : end + 1] == ":"  # "Luxembourg: Publications Office"
        if kind == "code":
            before = text[max(0, start - 2) : start].strip()
            prev = folded[i - 1] if i else ""
            return text[end : end + 1] in ("$", "/") or before[-1:].isdigit() or prev == "co"
        return False

    @cached_property
    def _compound_names(self) -> dict[str, str]:
        names, _ = self._names
        shortest = int(self.data.get("compound_min_letters", 5))
        skip = {fold(n) for n in self.data.get("compound_exceptions", [])}
        return {key[0]: code for key, code in names.items() if len(key) == 1 and len(key[0]) >= shortest and
                key[0].isalpha() and key[0] not in skip}  # fmt: skip

    def _compound(self, token: str) -> str | None:
        shortest = int(self.data.get("compound_min_letters", 5))
        for cut in range(3, len(token) - shortest + 1):  # the head word before the name has at least 3 letters
            code = self._compound_names.get(token[cut:])
            if code:
                return code
        return None

    def _match_at(self, tokens, folded, i: int) -> tuple[str, int, str] | None:
        """(code, tokens matched, kind) of the country word starting at token ``i``, if any."""
        names, name_stems = self._names
        adjectives = self._adjectives[0]
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
            if len(surface) == 2 and surface in self._alpha2 and not _shouting(tokens, i):
                return country_code(surface), 1, "code"
            if len(surface) == 3 and surface in self._alpha3 and not _shouting(tokens, i):
                return self._alpha3[surface], 1, "code"
        compound = self._compound(token) if capital else None
        if compound:  # Helsenorge, Norddeutschland
            return compound, 1, "name"
        genitive = token.endswith("s") and (token[:-1],) in names and token not in self._ambiguous
        if capital and genitive:  # Norges, Deutschlands, Frankreichs
            return names[(token[:-1],)], 1, "name"
        adjective = self._adjective_stem(token)
        if adjective:
            return adjective, 1, "adjective"
        for cut in (1, 2):  # Cyrillic and Greek case endings: "Франц" is a name, "Франции" the country
            stem, ending = token[:-cut], token[-cut:]
            if capital and len(stem) >= 3 and stem in name_stems and set(ending) <= INFLECTION_LETTERS:
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


@lru_cache(maxsize=1024)
def country_name(code: str, language: str = "en") -> str:
    """The country's CLDR name in a language ("EE", "fr" → "Estonie"); the code itself when unknown."""
    try:
        return Locale.parse(language or "en").territories.get(code, code)
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en").territories.get(code, code)
