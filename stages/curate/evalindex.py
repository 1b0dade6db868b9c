"""The eval n-gram index of Tulu 3 decontamination and its exact per-document scan.

Definition (unchanged from the first in-memory version): an eval instance's texts give their
word n-grams, a text shorter than n words one gram of its own length; a training document
*contains* a gram when the gram's words occur consecutively inside one of its texts; the
document's score for the instance is the share of the instance's token positions covered by
the grams it contains.

How the scan stays fast and exact: document words are mapped to ids of the eval vocabulary
(0 for a word no instance has: a window holding it can never match); for each gram length
present, 64-bit polynomial hashes of all windows are computed at once with numpy (wrapping
arithmetic over per-word random values); candidates are looked up in the sorted array of
that length's eval gram hashes and then compared word by word with the gram, so a hash
collision can never count. Memory is O(eval grams); documents are scanned one at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from stages.curate.fastwords import FastWords

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
    """length -> hash of every window of that length (row i = window starting at i)."""
    out, h = {}, values
    with np.errstate(over="ignore"):
        for size in range(1, lengths[-1] + 1):
            if size > 1:
                h = h[:-1] * _BASE + values[size - 1 :]
            if size in lengths:
                out[size] = h
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
        self.gram_words: list[tuple[str, ...]] = []  # gram id -> its words
        self.fast = FastWords({})

    @classmethod
    def build(cls, instances: dict[str, list[tuple[str, list[str]]]], n: int) -> EvalIndex:
        """Index task -> [(instance id, texts)] for ``n``-gram decontamination."""
        self = cls()
        self.n = n
        blob = json.dumps([n, list(instances.items())], ensure_ascii=False).encode("utf-8")
        self.digest = hashlib.sha256(blob).hexdigest()
        gram_of: dict[tuple[int, ...], int] = {}
        occurrences: list[list[tuple[int, int]]] = []  # gram id -> [(global start, length)]
        totals, base = [], 0
        for task, rows in instances.items():
            first = len(self.keys)
            for uid, texts in rows:
                total, grams = instance_grams(texts, n)
                for gram in grams:
                    ids = tuple(self.vocab.setdefault(w, len(self.vocab) + 1) for w in gram.words)
                    gid = gram_of.setdefault(ids, len(gram_of))
                    if gid == len(occurrences):
                        occurrences.append([])
                        self.gram_words.append(gram.words)
                    occurrences[gid].append((base + gram.start, len(ids)))
                self.keys.append((task, uid))
                totals.append(total)
                base += total
            self.task_ranges[task] = (first, len(self.keys))
        self.totals = np.array(totals, np.int64)
        self.pos_instance = np.repeat(np.arange(len(totals), dtype=np.int64), self.totals)
        sizes = [len(o) for o in occurrences]
        self.occ_ptr = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        flat = [pair for o in occurrences for pair in o]
        pairs = np.array(flat, np.int64).reshape(-1, 2)
        self.occ_start, self.occ_len = pairs[:, 0].copy(), pairs[:, 1].copy()
        self._build_tables(list(gram_of))
        self.fast = FastWords(self.vocab)
        return self

    def _build_tables(self, grams: list[tuple[int, ...]]) -> None:
        """Hash tables per gram length; reseed until no two grams of a length share a hash."""
        by_length: dict[int, list[int]] = {}
        for gid, ids in enumerate(grams):
            by_length.setdefault(len(ids), []).append(gid)
        for seed in range(1000):
            values = _word_values(len(self.vocab) + 1, seed)
            tables = {}
            for size, gids in sorted(by_length.items()):
                mat = np.array([grams[g] for g in gids], np.int32).reshape(len(gids), size)
                hashes = np.zeros(len(gids), np.uint64)
                with np.errstate(over="ignore"):
                    for col in range(size):
                        hashes = hashes * _BASE + values[mat[:, col]]
                order = np.argsort(hashes, kind="stable")
                hashes = hashes[order]
                if np.any(hashes[1:] == hashes[:-1]):
                    break  # a collision inside the eval set: try the next seed
                tables[size] = _Table.make(hashes, mat[order], np.array(gids, np.int64)[order])
            else:
                self.seed, self.values, self.tables = seed, values, tables
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
                    gids = doc.confirm(rows, gids, size, self.gram_words)
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

    def confirm(self, rows: np.ndarray, gids: np.ndarray, size: int, grams: list) -> np.ndarray:
        """The gram ids of which at least one window holds exactly the gram's words."""
        confirmed: set[int] = set()
        for row, gid in zip(rows.tolist(), gids.tolist(), strict=True):
            if gid not in confirmed and self.window(row, size) == grams[gid]:
                confirmed.add(gid)
        return np.array(sorted(confirmed), np.int64)


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, stop) for each pair (all stops > starts)."""
    sizes = stops - starts
    offsets = np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
    return offsets + np.arange(int(sizes.sum()), dtype=np.int64)
