"""MinHash-LSH near-duplicate detection: per-document band keys, then clusters across shards.

Same scheme and defaults as datatrove's ``MinhashConfig`` (word 5-grams, 14 bands x 8 hashes,
64-bit, seed 1), and the same signature: text simplified like ``simplify_text`` (lowercase,
numbers -> ``0``, punctuation -> space, whitespace collapsed, diacritics dropped), each
n-gram's ``xxh64`` of its space-joined words as the shingle, the permutations
``(a * x + b) mod (2**61 - 1)`` with ``a, b`` from ``numpy.random.RandomState(seed)`` (uint64
wrap-around included). So for the same words a signature equals datatrove's stage 1 output.
Differences:

* words are the simplified text split on spaces, not nltk's Treebank tokenizer: after
  simplification only letters, digits and symbols separated by single spaces remain, where the
  two agree except on a few fused forms (``cannot``, ``gonna``); the split is ~60x faster
  and needs no nltk data;
* a document with fewer than ``ngram`` words has its whole word sequence as one shingle, so
  short documents are deduplicated exactly (after simplification) — datatrove skips them;
* a band is reduced to one key, ``xxh64`` (seed = band index) of its ``rows`` little-endian
  uint64 hashes; distinct bands collide with probability 2**-64 per pair;
* clustering is the connected components of the "shares a band key" graph (datatrove keeps
  one document per bucket match chain in its stage 3; the components are the same).

Everything is a pure function of text and config: stable hashes, no Python ``hash()``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np

_PRIME = np.uint64((1 << 61) - 1)
_CHUNK = 2048  # shingles per block of the (shingles x hashes) matrix

# datatrove.utils.text: PUNCTUATION (mapped to spaces) and NUMBERS_PATTERN (Python's \d is
# Unicode Nd, as \p{Nd}); checked against simplify_text in the tests.
_NUMBERS = re.compile(r"\d+([.,،٫⎖⎗⎘]\d+)?")


@dataclass(frozen=True)
class MinHashConfig:
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1

    def __post_init__(self) -> None:
        for key in ("ngram", "bands", "rows"):
            if getattr(self, key) < 1:
                raise ValueError(f"minhash.{key} must be >= 1, got {getattr(self, key)}")


@cache
def _punctuation_table() -> dict[int, str]:
    from datatrove.utils.text import PUNCTUATION_TRANS

    return PUNCTUATION_TRANS


def simplify(text: str) -> str:
    """datatrove's ``simplify_text`` with its default ``TextNormConfig``."""
    text = _NUMBERS.sub("0", text.lower()).translate(_punctuation_table())
    text = " ".join(text.split())
    if not text.isascii():
        nfd = unicodedata.normalize("NFD", text)
        text = "".join(c for c in nfd if unicodedata.category(c) != "Mn")
    return text.strip()


@cache
def _permutations(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.RandomState(seed)
    a = gen.randint(1, _PRIME, dtype=np.uint64, size=(1, n))
    b = gen.randint(0, _PRIME, dtype=np.uint64, size=(1, n))
    return a, b


def shingles(text: str, ngram: int) -> np.ndarray:
    """uint64 ``xxh64`` of each word n-gram of the simplified text (at least one)."""
    from xxhash import xxh64_intdigest

    words = simplify(text).split()
    if len(words) <= ngram:
        grams = [" ".join(words)]
    else:
        grams = [" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
    return np.fromiter(map(xxh64_intdigest, grams), dtype=np.uint64, count=len(grams))


def _min_hashes(grams: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column minima of ``(grams * a + b) % (2**61 - 1)`` (uint64 wrap-around, as datatrove).

    The modulo by the Mersenne identity: ``x = (x & p) + (x >> 61)`` lies in ``[0, p + 7]``;
    the rare values >= p (reduced to ``x - p``) are handled exactly on a slow path.
    """
    x = grams * a
    x += b
    high = x >> np.uint64(61)
    x &= _PRIME
    x += high
    if x.max() < _PRIME:
        return x.min(axis=0)
    return np.where(x >= _PRIME, x - _PRIME, x).min(axis=0)


def signature(text: str, config: MinHashConfig = MinHashConfig()) -> np.ndarray:
    """The (bands * rows,) uint64 MinHash signature (datatrove's for the same words)."""
    a, b = _permutations(config.seed, config.bands * config.rows)
    grams = shingles(text, config.ngram)[:, None]
    sig = None
    for start in range(0, len(grams), _CHUNK):
        block = _min_hashes(grams[start : start + _CHUNK], a, b)
        sig = block if sig is None else np.minimum(sig, block)
    return sig


def band_keys(text: str, config: MinHashConfig) -> np.ndarray:
    """(bands,) uint64: one key per LSH band of the document's signature."""
    from xxhash import xxh64_intdigest

    rows = signature(text, config).astype("<u8").reshape(config.bands, config.rows)
    return np.array(
        [xxh64_intdigest(row.tobytes(), seed=i) for i, row in enumerate(rows)], dtype=np.uint64
    )


def clusters(keys: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Per document, the smallest position in its cluster (itself when it has no duplicate).

    ``keys`` (n_docs, bands) uint64 from ``band_keys``; ``positions`` (n_docs,) int64, unique
    global document positions. Documents sharing a key in any band are linked; clusters are the
    connected components. The answer depends only on the set of (position, keys) rows, not on
    their order or on how shards were concatenated. Sort-based: O(bands * n log n).
    """
    keys = np.asarray(keys)
    positions = np.asarray(positions, dtype=np.int64)
    if keys.ndim != 2 or positions.shape != (keys.shape[0],):
        raise ValueError(
            f"keys must be (n, bands) and positions (n,): {keys.shape}, {positions.shape}"
        )
    n = len(positions)
    if n and len(np.unique(positions)) != n:
        raise ValueError("positions must be unique")
    sources, targets = [], []
    for band in keys.T:
        order = np.argsort(band, kind="stable")
        same = np.flatnonzero(band[order[1:]] == band[order[:-1]])
        sources.append(order[same])
        targets.append(order[same + 1])
    edges = np.concatenate([*sources, np.empty(0, np.int64)])
    if not len(edges):
        return positions.copy()
    return _component_minimum(edges, np.concatenate(targets), positions)


def _component_minimum(src: np.ndarray, dst: np.ndarray, positions: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(positions)
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    by_position = np.argsort(positions)
    first_label, first = np.unique(labels[by_position], return_index=True)
    smallest = np.empty(first_label.max() + 1, np.int64)
    smallest[first_label] = positions[by_position][first]
    return smallest[labels]
