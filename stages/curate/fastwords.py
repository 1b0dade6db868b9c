"""``words()`` vectorised: a text's words as vocabulary ids, without a Python step per word.

``words(text)`` is the maximal runs of ``[^\\W_]`` characters of ``text.lower()``. Here the
lowered text becomes an array of code points; a table says which code points the regex class
matches (built once from the regex itself, so the two agree by construction); word bounds are
where that flag changes; each word gets a 64-bit polynomial hash from prefix sums, and hashes
are looked up among the vocabulary's. A hash says nothing exact: ``FastWords`` gives the spans
too, and the caller compares the words of every candidate gram as strings.
"""

from __future__ import annotations

import re

import numpy as np

_P_INT = 0x100000001B3  # odd: invertible modulo 2**64
_P = np.uint64(_P_INT)
_Q = np.uint64(pow(_P_INT, -1, 1 << 64))
_K = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_MAX_CP = 0x110000

_tables: dict[str, np.ndarray] = {}


def _word_chars() -> np.ndarray:
    """bool per code point: does ``[^\\W_]`` match it (what ``words()`` splits on)."""
    if "chars" not in _tables:
        table = np.zeros(_MAX_CP, bool)
        every = "".join(map(chr, range(_MAX_CP)))
        for m in re.finditer(r"[^\W_]+", every):
            table[m.start() : m.end()] = True
        _tables["chars"] = table
    return _tables["chars"]


def _powers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """P**k and P**-k modulo 2**64 for k < size (grown by doubling)."""
    have = _tables.get("p")
    if have is None or len(have) < size:
        length = max(1 << 12, 1 << int(size - 1).bit_length())
        with np.errstate(over="ignore"):
            p = np.full(length, _P, np.uint64)
            p[0] = 1
            q = np.full(length, _Q, np.uint64)
            q[0] = 1
            _tables["p"], _tables["q"] = np.cumprod(p), np.cumprod(q)
    return _tables["p"], _tables["q"]


def word_spans(text: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray] | None:
    """(lowered text, word starts, word ends, word hashes), or None when the text holds lone
    surrogates (then only ``words()`` applies)."""
    low = text.lower()
    if low.isascii():
        cps = np.frombuffer(low.encode("ascii"), np.uint8)
    else:
        try:
            cps = np.frombuffer(low.encode("utf-32-le"), np.uint32)
        except UnicodeEncodeError:
            return None
    flags = np.zeros(len(cps) + 2, bool)
    flags[1:-1] = _word_chars()[cps]
    bounds = np.flatnonzero(flags[1:] != flags[:-1])  # alternately a word's start and end
    starts, ends = bounds[::2], bounds[1::2]
    p, q = _powers(len(cps) + 1)  # uint64 array arithmetic wraps modulo 2**64, silently
    prefix = np.zeros(len(cps) + 1, np.uint64)
    np.cumsum((cps.astype(np.uint64) + _K) * q[: len(cps)], out=prefix[1:])
    hashes = (prefix[ends] - prefix[starts]) * p[ends - 1] if len(ends) else prefix[:0]
    # a bijective finalizer: the top bits (the lookup slot) depend on every character
    hashes ^= hashes >> np.uint64(31)
    hashes *= _MIX
    hashes ^= hashes >> np.uint64(29)
    return low, starts, ends, hashes


class FastWords:
    """Maps texts to ids of a vocabulary of ``words()`` words (0: not in it)."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.ok = False
        words = list(vocab)
        spans = word_spans(" ".join(words)) if words else None
        if spans is None:
            return
        low, starts, ends, hashes = spans
        if [low[s:e] for s, e in zip(starts, ends, strict=True)] != words:
            return  # lower() not idempotent on some vocabulary word: the slow path only
        order = np.argsort(hashes, kind="stable")
        self.hashes = hashes[order]
        if np.any(self.hashes[1:] == self.hashes[:-1]):
            return  # two vocabulary words share a hash: the slow path only
        self.ids = np.array([vocab[w] for w in words], np.int64)[order]
        self.make_slots()
        self.ok = True

    def make_slots(self) -> None:
        """A direct-mapped table on the top hash bits (~8 slots per word); the words after the
        first of a shared slot stay in sorted overflow arrays (slot flagged ``spill``)."""
        bits = int(min(22, max(10, np.ceil(np.log2(8 * len(self.hashes))))))
        self.shift = np.uint64(64 - bits)
        slot = self.hashes >> self.shift  # ascending, as the hashes are
        first = np.concatenate([[True], slot[1:] != slot[:-1]])
        self.slot_hash = np.zeros(1 << bits, np.uint64)
        self.slot_id = np.zeros(1 << bits, np.int64)
        self.slot_hash[slot[first]], self.slot_id[slot[first]] = self.hashes[first], self.ids[first]
        self.spill = np.zeros(1 << bits, bool)
        self.spill[slot[~first]] = True
        self.over_hash, self.over_id = self.hashes[~first], self.ids[~first]

    def text_ids(self, text: str) -> tuple[np.ndarray, str, np.ndarray, np.ndarray] | None:
        """(ids, lowered text, word starts, ends) of a text, or None (use ``words()``)."""
        spans = word_spans(text)
        if spans is None:
            return None
        low, starts, ends, hashes = spans
        if not len(hashes):
            return np.zeros(0, np.int64), low, starts, ends
        slot = hashes >> self.shift
        hit = self.slot_hash[slot] == hashes
        ids = self.slot_id[slot] * hit
        if len(self.over_hash):
            rest = np.flatnonzero(self.spill[slot] & ~hit)
            if len(rest):
                pos = np.searchsorted(self.over_hash, hashes[rest])
                np.minimum(pos, len(self.over_hash) - 1, out=pos)
                ids[rest] = self.over_id[pos] * (self.over_hash[pos] == hashes[rest])
        return ids, low, starts, ends
