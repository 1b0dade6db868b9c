"""IFEval instructions on words: keywords, language and case, length (registered on import)."""

from __future__ import annotations

import re

from evals.ifeval import text
from evals.ifeval.checker import Checker, _relation, register

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
