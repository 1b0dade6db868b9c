"""MinHash-LSH fuzzy dedup of the curate stage: band keys and clusters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stages.curate.minhash import MinHashConfig, band_keys, clusters, shingles, signature, simplify

ROOT = Path(__file__).resolve().parents[2]
CONFIG = MinHashConfig()
_RNG = np.random.default_rng(12)
_LETTERS = list("abcdefghijklmnoprstuvwy")
VOCAB = ["".join(_RNG.choice(_LETTERS, _RNG.integers(2, 9))) for _ in range(4000)]


def words(rng: np.random.Generator, n: int, vocab: list[str] = VOCAB) -> list[str]:
    return [vocab[i] for i in rng.integers(0, len(vocab), n)]


def doc(ws: list[str]) -> str:
    """Sentences of 12 words, capitalised, with punctuation and line breaks."""
    parts = [" ".join(ws[i : i + 12]).capitalize() + "." for i in range(0, len(ws), 12)]
    return "\n".join(" ".join(parts[i : i + 3]) for i in range(0, len(parts), 3))


def changed(rng: np.random.Generator, ws: list[str], k: int) -> list[str]:
    out = list(ws)
    for i in rng.choice(len(ws), k, replace=False):
        while out[i] == ws[i]:
            out[i] = VOCAB[rng.integers(0, len(VOCAB))]
    return out


def jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a, 5).tolist()), set(shingles(b, 5).tolist())
    return len(sa & sb) / len(sa | sb)


def cluster_of(texts: list[str]) -> list[int]:
    keys = np.stack([band_keys(t, CONFIG) for t in texts])
    return clusters(keys, np.arange(len(texts), dtype=np.int64)).tolist()


def test_defaults_are_datatrove_minhash_config():
    from datatrove.pipeline.dedup.minhash import MinhashConfig

    ref = MinhashConfig()
    assert (CONFIG.ngram, CONFIG.bands, CONFIG.rows, CONFIG.seed) == (
        ref.n_grams, ref.num_buckets, ref.hashes_per_bucket, ref.seed,
    )  # fmt: skip
    assert ref.hash_config.precision == 64


@pytest.mark.parametrize(
    "text",
    [
        "The Café on 5th Avenue sold 1,200.50 coffees — naïve résumé!\n\n  Busy;  Ωmega ﬁne.",
        "Tabs\tand\r\nnewlines, (brackets) [x] {y} «quotes» “curly” ½ ٣٤٫٥ x \u0301 y",
        "",
    ],
)
def test_simplify_is_datatrove_simplify_text(text):
    from datatrove.utils.text import simplify_text

    assert simplify(text) == simplify_text(text)


def test_signature_is_datatrove_signature(tmp_path):
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    from stages.curate.wordtok import english

    text = doc(words(np.random.default_rng(1), 300)) + " Prices: $3.50, 1,200 in 2024!"
    ref = MinhashDedupSignature(str(tmp_path), language=english())
    expected = np.concatenate(ref.get_signature(ref.get_shingles(text))).astype(np.uint64)
    assert np.array_equal(signature(text, CONFIG), expected)
    big = text * 20  # more shingles than one block of the hash matrix
    expected = np.concatenate(ref.get_signature(ref.get_shingles(big))).astype(np.uint64)
    assert np.array_equal(signature(big, CONFIG), expected)


def test_band_keys_shape_and_stable_across_processes():
    text = doc(words(np.random.default_rng(2), 300))
    keys = band_keys(text, CONFIG)
    assert keys.shape == (14,) and keys.dtype == np.uint64
    code = (
        "import json, sys; from stages.curate.minhash import MinHashConfig, band_keys; "
        "print(json.dumps(band_keys(sys.stdin.read(), MinHashConfig()).tolist()))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code], input=text, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout) == keys.tolist()
    other = band_keys(text, MinHashConfig(seed=2))
    assert not np.intersect1d(other, keys).size
    small = band_keys(text, MinHashConfig(bands=4, rows=2))
    assert small.shape == (4,)


def test_near_duplicates_cluster_and_distinct_documents_do_not():
    rng = np.random.default_rng(3)
    base = words(rng, 300)
    topic = VOCAB[:150]  # same-topic documents: one small vocabulary, different text
    texts = [
        doc(base),
        doc(changed(rng, base, 3)),  # a few words changed
        doc(base) + "\nThis line was appended to the end of the document by someone.",
        doc(base).upper(),  # normalised away
        doc(words(rng, 300, topic)),
        doc(words(rng, 300, topic)),
        doc(words(rng, 300)),
    ]
    assert cluster_of(texts) == [0, 0, 0, 0, 4, 5, 6]


def test_short_documents_are_one_shingle():
    texts = ["Hello world.", "hello,  WORLD!", "Hello there.", "", "  ...  ", "Hello world again."]
    assert cluster_of(texts) == [0, 0, 2, 3, 3, 5]


def test_jaccard_vs_cluster_probability():
    rng = np.random.default_rng(4)
    rates = {}
    for k, (low, high) in {3: (0.85, 0.95), 40: (0.25, 0.35)}.items():
        hits, measured = 0, []
        for _ in range(200):
            base = words(rng, 300)
            a, b = doc(base), doc(changed(rng, base, k))
            measured.append(jaccard(a, b))
            hits += cluster_of([a, b]) == [0, 0]
        assert low < np.mean(measured) < high, (k, np.mean(measured))
        rates[k] = hits / 200
    # 1 - (1 - s^8)^14: 0.9996 at s = 0.9, 0.0009 at s = 0.3
    assert rates[3] >= 0.97 and rates[40] <= 0.03, rates


def _random_keys(rng: np.random.Generator, n: int, bands: int = 14) -> np.ndarray:
    keys = rng.integers(0, 2**63, (n, bands), dtype=np.uint64)
    for _ in range(n // 3):  # plant shared keys in random bands: chains across bands
        i, j = rng.integers(0, n, 2)
        band = rng.integers(0, bands)
        keys[j, band] = keys[i, band]
    return keys


def test_clusters_links_transitively():
    keys = np.random.default_rng(6).integers(0, 2**63, (6, 14), dtype=np.uint64)
    keys[2, 0] = keys[4, 0]  # 2 - 4 in band 0
    keys[4, 9] = keys[5, 9]  # 4 - 5 in band 9: 2, 4, 5 one cluster
    keys[3, 13] = keys[1, 13]
    positions = np.array([70, 60, 50, 40, 30, 20], dtype=np.int64)
    assert clusters(keys, positions).tolist() == [70, 40, 20, 40, 20, 20]


def test_clusters_invariant_under_shuffling_and_sharding():
    rng = np.random.default_rng(7)
    n = 3000
    keys = _random_keys(rng, n)
    positions = rng.permutation(10 * n)[:n].astype(np.int64)
    expected = dict(zip(positions.tolist(), clusters(keys, positions).tolist(), strict=True))
    assert len(set(expected.values())) < n - 100  # there are clusters to get wrong
    for _ in range(3):
        order = rng.permutation(n)
        cuts = np.sort(rng.choice(np.arange(1, n), 4, replace=False))
        shards = np.split(order, cuts)
        rng.shuffle(shards)
        rows = np.concatenate(shards)
        got = clusters(keys[rows], positions[rows])
        assert dict(zip(positions[rows].tolist(), got.tolist(), strict=True)) == expected


def test_clusters_edge_cases():
    empty = clusters(np.empty((0, 14), np.uint64), np.empty(0, np.int64))
    assert empty.shape == (0,)
    keys = np.ones((3, 2), np.uint64)
    assert clusters(keys, np.array([5, 3, 9])).tolist() == [3, 3, 3]
    with pytest.raises(ValueError, match="unique"):
        clusters(keys, np.array([1, 1, 2]))
    with pytest.raises(ValueError, match="positions"):
        clusters(keys, np.array([1, 2]))


def test_mersenne_reduction_is_exact():
    from stages.curate.minhash import _min_hashes

    prime = np.uint64((1 << 61) - 1)
    grams = np.array([[0], [1], [2], [2**64 - 1], [12345]], np.uint64)
    a = np.array([[1, 3, 2**61, 2**63 + 5, 1]], np.uint64)
    b = np.array([[int(prime), int(prime) - 1, 7, int(prime) + 7, 2**64 - 1]], np.uint64)  # x = p
    assert np.array_equal(_min_hashes(grams, a, b), ((grams * a + b) % prime).min(axis=0))
    rng = np.random.default_rng(8)
    grams = rng.integers(0, 2**64, (500, 1), dtype=np.uint64)
    a, b = (rng.integers(0, 2**64, (1, 16), dtype=np.uint64) for _ in range(2))
    assert np.array_equal(_min_hashes(grams, a, b), ((grams * a + b) % prime).min(axis=0))
