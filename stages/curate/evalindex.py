"""The eval n-gram index of Tulu 3 decontamination and its exact per-document scan.

Definition (unchanged from the first in-memory version): an eval instance's texts give their
word n-grams, a text shorter than n words one gram of its own length; a training document
*contains* a gram when the gram's words occur consecutively inside one of its texts; the
document's score for the instance is the share of the instance's token positions covered by
the grams it contains.

How the scan stays fast and exact: document words are mapped to ids of the eval vocabulary
(0 for a word no instance has: a window holding it can never match; ``fastwords.py`` does
this without a Python step per word); for each gram length present, 64-bit polynomial hashes
of all windows come from one prefix sum (numpy, wrapping arithmetic over per-word random
values); candidates pass a bitmap prefilter and the sorted array of that length's eval gram
hashes, and are then compared id by id with the gram (and, for hashed word ids, as strings),
so a hash collision can never count. Memory is O(eval grams); documents are scanned one at a
time. Python's ``hash()`` of str (salted per process) is never used.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from stages.curate.fastwords import _P, FastWords, _powers

_WORD = re.compile(r"[^\W_]+")  # runs of Unicode letters/digits
_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier of the rolling hash
_SEP = np.zeros(1, np.int64)  # between a document's texts: no window spans two
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def words(text: str) -> list[str]:
    """Lowercased words: the text split on non-alphanumerics."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Gram:
    """An n-gram of an eval instance and the token positions it covers."""

    words: tuple[str, ...]
    start: int


def instance_grams(texts: list[str], n: int) -> tuple[int, list[Gram]]:
    """(token count, grams) of one instance. Each text contributes its word n-grams, or, when
    shorter than n words, the whole text as one gram."""
    grams, offset = [], 0
    for text in texts:
        toks = words(text)
        if len(toks) >= n:
            grams += [Gram(tuple(toks[i : i + n]), offset + i) for i in range(len(toks) - n + 1)]
        elif toks:
            grams.append(Gram(tuple(toks), offset))
        offset += len(toks)
    return offset, grams


def _word_values(count: int, seed: int) -> np.ndarray:
    """Pseudo-random 64-bit values of word ids 0..count-1 (splitmix64; deterministic)."""
    with np.errstate(over="ignore"):
        z = np.arange(count, dtype=np.uint64) + np.uint64(seed) * _BASE + _BASE
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def _window_hashes(values: np.ndarray, lengths: list[int]) -> dict[int, np.ndarray]:
    """length -> hash of every window of that length (row i = window starting at i):
    sum of values[i + k] * P**(size - 1 - k), from one prefix sum of values[j] * P**-j."""
    p, q = _powers(len(values) + 1)
    out = {}
    prefix = np.zeros(len(values) + 1, np.uint64)
    np.cumsum(values * q[: len(values)], out=prefix[1:])
    for size in lengths:
        out[size] = (prefix[size:] - prefix[:-size]) * p[size - 1 : len(values)]
    return out


@dataclass
class _Table:
    """The eval grams of one length, sorted by hash (hashes unique within the table)."""

    hashes: np.ndarray  # uint64, sorted
    words: np.ndarray  # (grams, length) int32 word ids, same order
    gram_ids: np.ndarray  # int64 ids into the occurrence lists
    shift: np.uint64  # prefilter: bitmap[hash >> shift] is set for every eval hash
    bitmap: np.ndarray

    @classmethod
    def make(cls, hashes: np.ndarray, mat: np.ndarray, gids: np.ndarray) -> _Table:
        """The table with a prefilter of ~16 bits per gram (1 KiB .. 128 MiB)."""
        bits = int(min(27, max(13, np.ceil(np.log2(16 * len(hashes))))))
        shift = np.uint64(64 - bits)
        bitmap = np.zeros(1 << bits, bool)
        bitmap[hashes >> shift] = True
        return cls(hashes, mat, gids, shift, bitmap)

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window rows, table rows) of the windows whose hash is an eval gram's."""
        rows = np.flatnonzero(self.bitmap[hashes >> self.shift])
        if not len(rows):
            return rows, rows
        pos = np.searchsorted(self.hashes, hashes[rows])
        np.minimum(pos, len(self.hashes) - 1, out=pos)
        same = self.hashes[pos] == hashes[rows]
        return rows[same], pos[same]


class EvalIndex:
    """Every gram of every eval instance, ready to score training documents."""

    def __init__(self) -> None:
        self.n = 0
        self.keys: list[tuple[str, str]] = []  # instance position -> (task, instance id)
        self.task_ranges: dict[str, tuple[int, int]] = {}  # task -> instance positions
        self.totals = np.zeros(0, np.int64)  # instance position -> token count
        self.digest = ""  # of n and all instance texts: scans of other indexes are refused
        self.vocab: dict[str, int] = {}
        self.tables: dict[int, _Table] = {}
        self.occ_ptr = np.zeros(1, np.int64)  # gram id -> its occurrences [ptr[g], ptr[g+1])
        self.occ_start = np.zeros(0, np.int64)  # occurrence -> first global token position
        self.occ_len = np.zeros(0, np.int64)
        self.pos_instance = np.zeros(0, np.int64)  # global token position -> instance
        self.seed = 0
        self.values = np.zeros(1, np.uint64)  # word id -> its random hash value
        self.words_of: list[str] = [""]  # word id -> word
        self.fast = FastWords({})

    @classmethod
    def build(cls, instances: dict[str, list[tuple[str, list[str]]]], n: int) -> EvalIndex:
        """Index task -> [(instance id, texts)] for ``n``-gram decontamination."""
        self = cls()
        self.n = n
        blob = json.dumps([n, list(instances.items())], ensure_ascii=False).encode("utf-8")
        self.digest = hashlib.sha256(blob).hexdigest()
        texts_by_size: dict[int, list[tuple[np.ndarray, int]]] = {}  # (word ids, global start)
        totals, base, get = [], 0, self.vocab.setdefault
        for task, rows in instances.items():
            first = len(self.keys)
            for uid, texts in rows:
                offset = 0
                for text in texts:
                    toks = words(text)
                    if toks:  # n-grams, or the whole text when shorter: one gram
                        ids = np.array([get(w, len(self.vocab) + 1) for w in toks], np.int32)
                        texts_by_size.setdefault(min(n, len(toks)), []).append((ids, base + offset))
                    offset += len(toks)
                self.keys.append((task, uid))
                totals.append(offset)
                base += offset
            self.task_ranges[task] = (first, len(self.keys))
        self.totals = np.array(totals, np.int64)
        self.pos_instance = np.repeat(np.arange(len(totals), dtype=np.int64), self.totals)
        self.words_of = ["", *self.vocab]  # word id -> word
        self._build_tables({size: _windows(items, size) for size, items in texts_by_size.items()})
        self.fast = FastWords(self.vocab)
        return self

    def _build_tables(self, occ: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Per gram length the distinct grams sorted by hash, and every occurrence by gram;
        reseed until grams of one length never share a hash."""
        for seed in range(1000):
            values = _word_values(len(self.vocab) + 1, seed)
            tables, starts, lens, counts, gid_base = {}, [], [], [], 0
            for size, (mat, first) in sorted(occ.items()):
                hashes = np.zeros(len(mat), np.uint64)
                with np.errstate(over="ignore"):
                    for col in range(size):
                        hashes = hashes * _P + values[mat[:, col]]
                order = np.argsort(hashes, kind="stable")
                hashes, mat = hashes[order], mat[order]
                new = np.concatenate([[True], hashes[1:] != hashes[:-1]])
                if np.any(mat[1:][~new[1:]] != mat[:-1][~new[1:]]):
                    break  # two different grams share a hash: try the next seed
                uniq = np.flatnonzero(new)
                gids = gid_base + np.arange(len(uniq), dtype=np.int64)
                tables[size] = _Table.make(hashes[uniq], mat[uniq], gids)
                starts.append(first[order])  # grouped by gram id, ids ascending
                lens.append(np.full(len(mat), size, np.int64))
                counts.append(np.diff(np.append(uniq, len(mat))))
                gid_base += len(uniq)
            else:
                self.seed, self.values, self.tables = seed, values, tables
                self.occ_start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
                self.occ_len = np.concatenate(lens) if lens else np.zeros(0, np.int64)
                sizes = np.concatenate(counts) if counts else np.zeros(0, np.int64)
                self.occ_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
                return
        raise RuntimeError("no collision-free hash seed found")  # pragma: no cover

    def _word_ids(self, word_lists: list[list[str]]) -> np.ndarray:
        """The document's word ids, texts separated by 0 (so no window spans two texts)."""
        if len(word_lists) == 1:
            flat = word_lists[0]
        else:  # "" is no word: id 0
            flat = [w for toks in word_lists for w in (*toks, "")]
        return np.fromiter(map(self.vocab.get, flat, repeat(0)), np.int64, len(flat))

    def _text_ids(self, texts: list[str]) -> tuple[np.ndarray, _Words]:
        """Word ids of a document's texts (vectorised where possible), separated by 0."""
        parts, pieces, offset = [], [], 0
        for text in texts:
            got = self.fast.text_ids(text) if self.fast.ok else None
            if got is None:
                toks = words(text)
                ids = np.fromiter(map(self.vocab.get, toks, repeat(0)), np.int64, len(toks))
                pieces.append((offset, toks))
            else:
                ids = got[0]
                pieces.append((offset, got[1:]))
            parts += [ids, _SEP]
            offset += len(ids) + 1
        ids = parts[0] if len(parts) == 2 else np.concatenate(parts[:-1]) if parts else _SEP[:0]
        return ids, _Words(pieces)

    def matched_grams(self, ids: np.ndarray, doc: _Words | None = None) -> np.ndarray:
        """Sorted ids of the eval grams in a document's word ids, each verified word by word
        on the ids and, where the ids came from word hashes (``doc``), on the strings."""
        lengths = [size for size in self.tables if size <= len(ids)]
        if not lengths or not ids.any():
            return np.zeros(0, np.int64)
        found = []
        for size, hashes in _window_hashes(self.values[ids], lengths).items():
            table = self.tables[size]
            rows, pos = table.lookup(hashes)
            if len(rows):  # the word-by-word check: a hash collision never counts
                windows = np.lib.stride_tricks.sliding_window_view(ids, size)[rows]
                exact = np.all(windows == table.words[pos], axis=1)
                rows, gids = rows[exact], table.gram_ids[pos[exact]]
                if doc is not None and len(rows):
                    gids = doc.confirm(rows, gids, size, ids, self.words_of)
                found.append(gids)
        return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)

    def _scores(self, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(instance positions, coverage scores) given the grams a document contains."""
        if not len(grams):
            return np.zeros(0, np.int64), np.zeros(0)
        occ = _ranges(self.occ_ptr[grams], self.occ_ptr[grams + 1])
        positions = np.unique(_ranges(self.occ_start[occ], self.occ_start[occ] + self.occ_len[occ]))
        inst, counts = np.unique(self.pos_instance[positions], return_counts=True)
        return inst, counts / self.totals[inst]

    def score_words(self, word_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(instance positions, scores > 0) of one document given as its texts' words."""
        return self._scores(self.matched_grams(self._word_ids(word_lists)))

    def score_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(instance positions, scores > 0) of one document given as its texts."""
        return self._scores(self.matched_grams(*self._text_ids(texts)))

    def scan(self, texts: list[str]) -> dict[tuple[str, str], float]:
        """One training document's texts -> {(task, instance id): score} where score > 0."""
        out: dict[tuple[str, str], float] = {}
        for i, score in zip(*self.score_texts(texts), strict=True):
            key = self.keys[i]
            out[key] = max(float(score), out.get(key, 0.0))
        return out


class _Words:
    """A document's words, by position in its id array: per text its words, or its lowered
    text and word spans (ids from word hashes, confirmed here as strings)."""

    def __init__(self, pieces: list[tuple[int, list[str] | tuple]]) -> None:
        self.pieces = pieces

    def window(self, row: int, size: int) -> tuple[str, ...]:
        offset, piece = next(p for p in reversed(self.pieces) if p[0] <= row)
        i = row - offset
        if isinstance(piece, list):
            return tuple(piece[i : i + size])
        low, starts, ends = piece
        return tuple(
            low[a:b] for a, b in zip(starts[i : i + size], ends[i : i + size], strict=True)
        )

    def confirm(
        self, rows: np.ndarray, gids: np.ndarray, size: int, ids: np.ndarray, words_of: list[str]
    ) -> np.ndarray:
        """The gram ids of which at least one window holds the gram's words as strings (the
        window's ids equal the gram's, so the gram's words are those of the ids)."""
        confirmed: set[int] = set()
        for row, gid in zip(rows.tolist(), gids.tolist(), strict=True):
            if gid not in confirmed:
                want = tuple(words_of[i] for i in ids[row : row + size].tolist())
                if self.window(row, size) == want:
                    confirmed.add(gid)
        return np.array(sorted(confirmed), np.int64)


def _windows(items: list[tuple[np.ndarray, int]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(every window of ``size`` word ids, its global start position) of the texts."""
    mat = np.concatenate([np.lib.stride_tricks.sliding_window_view(ids, size) for ids, _ in items])
    first = np.concatenate([start + np.arange(len(ids) - size + 1) for ids, start in items])
    return mat, first.astype(np.int64)


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, stop) for each pair (all stops > starts)."""
    sizes = stops - starts
    offsets = np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
    return offsets + np.arange(int(sizes.sum()), dtype=np.int64)
