"""IFEval instruction checkers: one class per instruction id, in a registry keyed by that id.

Re-derived from the definitions of Google's IFEval (Zhou et al., 2023). A checker is built from
an item's kwargs (``None`` values dropped) and ``check(response) -> bool`` says whether the
response follows the instruction. Relations are "less than" (``<``) and "at least" (``>=``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, ClassVar

from evals.ifeval import text

RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "less than": lambda value, bound: value < bound,
    "at least": lambda value, bound: value >= bound,
}


def _relation(name: str) -> Callable[[int, int], bool]:
    if name not in RELATIONS:
        raise ValueError(f"relation {name!r} is not one of {sorted(RELATIONS)}")
    return RELATIONS[name]


class Checker:
    """Base class: subclasses set ``instruction_id`` and implement ``check``."""

    instruction_id: ClassVar[str]

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise ValueError(f"{self.instruction_id}: unexpected kwargs {sorted(kwargs)}")

    def check(self, response: str) -> bool:
        raise NotImplementedError


CHECKERS: dict[str, type[Checker]] = {}


def register(cls: type[Checker]) -> type[Checker]:
    if cls.instruction_id in CHECKERS:
        raise ValueError(f"instruction id {cls.instruction_id!r} is registered twice")
    CHECKERS[cls.instruction_id] = cls
    return cls


def build(instruction_id: str, kwargs: dict[str, Any] | None) -> Checker:
    """The checker for ``instruction_id`` built from an item's kwargs (``None`` values dropped)."""
    if instruction_id not in CHECKERS:
        known = ", ".join(sorted(CHECKERS))
        raise ValueError(f"unknown IFEval instruction id {instruction_id!r}; known: {known}")
    clean = {k: v for k, v in (kwargs or {}).items() if v is not None}
    try:
        return CHECKERS[instruction_id](**clean)
    except TypeError as error:
        raise ValueError(f"{instruction_id}: bad kwargs {sorted(clean)} ({error})") from None


# --- keywords ---------------------------------------------------------------------------------


@register
class KeywordExistence(Checker):
    """Every keyword appears (case-insensitive substring)."""

    instruction_id = "keywords:existence"

    def __init__(self, keywords: list[str]) -> None:
        self.keywords = list(keywords)

    def check(self, response: str) -> bool:
        return all(re.search(re.escape(k), response, re.IGNORECASE) for k in self.keywords)


@register
class KeywordFrequency(Checker):
    """The keyword's case-insensitive occurrence count stands in ``relation`` to ``frequency``."""

    instruction_id = "keywords:frequency"

    def __init__(self, keyword: str, frequency: int, relation: str) -> None:
        self.keyword, self.frequency, self.relation = keyword, frequency, _relation(relation)

    def check(self, response: str) -> bool:
        count = len(re.findall(re.escape(self.keyword), response, re.IGNORECASE))
        return self.relation(count, self.frequency)


@register
class ForbiddenWords(Checker):
    """None of the words appears as a whole word (case-insensitive)."""

    instruction_id = "keywords:forbidden_words"

    def __init__(self, forbidden_words: list[str]) -> None:
        self.words = list(forbidden_words)

    def check(self, response: str) -> bool:
        return not any(
            re.search(r"\b" + re.escape(w) + r"\b", response, re.IGNORECASE) for w in self.words
        )


@register
class LetterFrequency(Checker):
    """The letter's case-insensitive count stands in ``let_relation`` to ``let_frequency``.

    A non-letter ``letter`` (the data has "#" and "!") makes the reference pick a random letter;
    here the given character itself is counted, so the check is deterministic and tests what
    the prompt asks for.
    """

    instruction_id = "keywords:letter_frequency"

    def __init__(self, letter: str, let_frequency: int, let_relation: str) -> None:
        if len(letter) != 1:
            raise ValueError(f"{self.instruction_id}: letter {letter!r} is not one character")
        self.letter = letter.lower()
        self.frequency, self.relation = let_frequency, _relation(let_relation)

    def check(self, response: str) -> bool:
        return self.relation(response.lower().count(self.letter), self.frequency)


# --- language and case ------------------------------------------------------------------------


@register
class ResponseLanguage(Checker):
    """langdetect names ``language``; undecidable text (no letters) passes, as in the reference."""

    instruction_id = "language:response_language"

    def __init__(self, language: str) -> None:
        self.language = language

    def check(self, response: str) -> bool:
        detected = text.detect_language(response)
        return detected is None or detected == self.language


@register
class EnglishCapital(Checker):
    """All letters upper case and the text detected as English (undecidable passes)."""

    instruction_id = "change_case:english_capital"

    def check(self, response: str) -> bool:
        return response.isupper() and text.detect_language(response) in (None, "en")


@register
class EnglishLowercase(Checker):
    """All letters lower case and the text detected as English (undecidable passes)."""

    instruction_id = "change_case:english_lowercase"

    def check(self, response: str) -> bool:
        return response.islower() and text.detect_language(response) in (None, "en")


@register
class CapitalWordFrequency(Checker):
    """The number of all-capital words (nltk word tokens) stands in relation to the bound."""

    instruction_id = "change_case:capital_word_frequency"

    def __init__(self, capital_frequency: int, capital_relation: str) -> None:
        self.frequency, self.relation = capital_frequency, _relation(capital_relation)

    def check(self, response: str) -> bool:
        capitals = [w for w in text.word_tokens(response) if w.isupper()]
        return self.relation(len(capitals), self.frequency)


# --- length -----------------------------------------------------------------------------------


@register
class NumberSentences(Checker):
    """The Punkt sentence count stands in ``relation`` to ``num_sentences``."""

    instruction_id = "length_constraints:number_sentences"

    def __init__(self, num_sentences: int, relation: str) -> None:
        self.bound, self.relation = num_sentences, _relation(relation)

    def check(self, response: str) -> bool:
        return self.relation(text.count_sentences(response), self.bound)


@register
class NumberWords(Checker):
    """The ``\\w+`` word count stands in ``relation`` to ``num_words``."""

    instruction_id = "length_constraints:number_words"

    def __init__(self, num_words: int, relation: str) -> None:
        self.bound, self.relation = num_words, _relation(relation)

    def check(self, response: str) -> bool:
        return self.relation(text.count_words(response), self.bound)


@register
class NumberParagraphs(Checker):
    """Exactly ``num_paragraphs`` paragraphs separated by ``***``.

    An empty first or last piece is not counted; an empty piece in between fails.
    """

    instruction_id = "length_constraints:number_paragraphs"

    def __init__(self, num_paragraphs: int) -> None:
        self.num = num_paragraphs

    def check(self, response: str) -> bool:
        pieces = re.split(r"\s?\*\*\*\s?", response)
        count = len(pieces)
        for index, piece in enumerate(pieces):
            if not piece.strip():
                if index in (0, len(pieces) - 1):
                    count -= 1
                else:
                    return False
        return count == self.num


@register
class NthParagraphFirstWord(Checker):
    """Exactly ``num_paragraphs`` paragraphs (split on blank lines, ``\\n\\n``) and paragraph
    ``nth_paragraph`` starts with ``first_word`` (case-insensitive, leading quotes and trailing
    punctuation ignored)."""

    instruction_id = "length_constraints:nth_paragraph_first_word"
    _PUNCTUATION = frozenset(".,?!'\"")

    def __init__(self, num_paragraphs: int, nth_paragraph: int, first_word: str) -> None:
        self.num, self.nth, self.first_word = num_paragraphs, nth_paragraph, first_word.lower()

    def check(self, response: str) -> bool:
        pieces = re.split(r"\n\n", response)
        count = sum(1 for piece in pieces if piece.strip())
        if self.nth > count:
            return False
        # As in the reference, the n-th piece is taken from the raw split (empty pieces included).
        paragraph = pieces[self.nth - 1].strip()
        if not paragraph:
            return False
        word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for char in word:
            if char in self._PUNCTUATION:
                break
            first += char.lower()
        return count == self.num and first == self.first_word


# --- detectable content and format -------------------------------------------------------------


@register
class NumberPlaceholders(Checker):
    """At least ``num_placeholders`` square-bracket placeholders such as ``[address]``."""

    instruction_id = "detectable_content:number_placeholders"

    def __init__(self, num_placeholders: int) -> None:
        self.num = num_placeholders

    def check(self, response: str) -> bool:
        return len(re.findall(r"\[.*?\]", response)) >= self.num


@register
class Postscript(Checker):
    """A line starting with the postscript marker (``P.S.``, ``P.P.S`` or any other text)."""

    instruction_id = "detectable_content:postscript"

    def __init__(self, postscript_marker: str) -> None:
        self.marker = postscript_marker
        marker = postscript_marker.lower()
        if marker == "p.p.s":
            self.pattern = r"\s*p\.\s?p\.\s?s.*$"
        elif marker == "p.s.":
            self.pattern = r"\s*p\.\s?s\..*$"
        else:
            self.pattern = r"\s*" + re.escape(marker) + r".*$"

    def check(self, response: str) -> bool:
        return bool(re.findall(self.pattern, response.lower(), flags=re.MULTILINE))


@register
class NumberBulletLists(Checker):
    """Exactly ``num_bullets`` markdown bullet lines (``* item`` or ``- item``)."""

    instruction_id = "detectable_format:number_bullet_lists"

    def __init__(self, num_bullets: int) -> None:
        self.num = num_bullets

    def check(self, response: str) -> bool:
        stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
        dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
        return len(stars) + len(dashes) == self.num


@register
class ConstrainedResponse(Checker):
    """The response contains one of the fixed answers ("My answer is yes." / no. / maybe.)."""

    instruction_id = "detectable_format:constrained_response"
    OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")

    def check(self, response: str) -> bool:
        stripped = response.strip()
        return any(option in stripped for option in self.OPTIONS)


@register
class NumberHighlightedSections(Checker):
    """At least ``num_highlights`` non-empty ``*highlighted*`` (or ``**bold**``) spans."""

    instruction_id = "detectable_format:number_highlighted_sections"

    def __init__(self, num_highlights: int) -> None:
        self.num = num_highlights

    def check(self, response: str) -> bool:
        single = re.findall(r"\*[^\n\*]*\*", response)
        double = re.findall(r"\*\*[^\n\*]*\*\*", response)
        count = sum(1 for h in single if h.strip("*").strip())
        count += sum(1 for h in double if h.removeprefix("**").removesuffix("**").strip())
        return count >= self.num


@register
class MultipleSections(Checker):
    """At least ``num_sections`` sections, each opened by ``<section_spliter> <number>``."""

    instruction_id = "detectable_format:multiple_sections"

    def __init__(self, section_spliter: str, num_sections: int) -> None:
        self.splitter, self.num = section_spliter.strip(), num_sections

    def check(self, response: str) -> bool:
        pieces = re.split(r"\s?" + re.escape(self.splitter) + r"\s?\d+\s?", response)
        return len(pieces) - 1 >= self.num


@register
class JsonFormat(Checker):
    """The whole response parses as JSON (an enclosing markdown code fence is allowed)."""

    instruction_id = "detectable_format:json_format"

    def check(self, response: str) -> bool:
        body = response.strip()
        for fence in ("```json", "```Json", "```JSON", "```"):
            body = body.removeprefix(fence)
        body = body.removesuffix("```").strip()
        try:
            json.loads(body)
        except ValueError:
            return False
        return True


@register
class Title(Checker):
    """A non-empty title in double angular brackets, ``<<title>>``, on one line."""

    instruction_id = "detectable_format:title"

    def check(self, response: str) -> bool:
        titles = re.findall(r"<<[^\n]+>>", response)
        return any(t.lstrip("<").rstrip(">").strip() for t in titles)


# --- combination, start/end, punctuation ---------------------------------------------------------


@register
class TwoResponses(Checker):
    """Two different non-empty responses separated by ``******``."""

    instruction_id = "combination:two_responses"

    def check(self, response: str) -> bool:
        pieces = response.split("******")
        kept = []
        for index, piece in enumerate(pieces):
            if not piece.strip():
                if index not in (0, len(pieces) - 1):
                    return False
            else:
                kept.append(piece)
        return len(kept) == 2 and kept[0].strip() != kept[1].strip()


@register
class RepeatPrompt(Checker):
    """The response starts with the request, repeated word for word (case-insensitive)."""

    instruction_id = "combination:repeat_prompt"

    def __init__(self, prompt_to_repeat: str) -> None:
        self.prompt = prompt_to_repeat

    def check(self, response: str) -> bool:
        return response.strip().lower().startswith(self.prompt.strip().lower())


@register
class EndChecker(Checker):
    """The response ends with ``end_phrase`` (case-insensitive; enclosing quotes ignored)."""

    instruction_id = "startend:end_checker"

    def __init__(self, end_phrase: str) -> None:
        self.end_phrase = end_phrase

    def check(self, response: str) -> bool:
        return response.strip().strip('"').lower().endswith(self.end_phrase.strip().lower())


@register
class Quotation(Checker):
    """The whole response is wrapped in double quotes."""

    instruction_id = "startend:quotation"

    def check(self, response: str) -> bool:
        stripped = response.strip()
        return len(stripped) > 1 and stripped[0] == '"' and stripped[-1] == '"'


@register
class NoComma(Checker):
    """No comma anywhere in the response."""

    instruction_id = "punctuation:no_comma"

    def check(self, response: str) -> bool:
        return "," not in response
