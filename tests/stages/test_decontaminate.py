"""Sharded Tulu 3 decontamination: exact against a brute-force oracle, planted GSM8K/IFEval
items found in reformatted copies, paraphrases kept, the same report however it is sharded."""

from __future__ import annotations

import itertools
import json
import pathlib
import random
import re

import numpy as np
import pytest

from stages.curate.decontaminate import (
    EvalIndex,
    ShardScan,
    decontaminate,
    merge_scans,
    words,
)
from stages.curate.evalindex import _window_hashes
from stages.curate.fastwords import FastWords, word_spans
from stages.curate.normalize import normalize_text

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"


# ---------------------------------------------------------------- the definition, brute force
def oracle_scores(texts: list[str], instances: dict, n: int) -> dict[tuple[str, str], float]:
    """Tulu 3 coverage of one document for every instance it touches, by brute force."""
    doc = [words(t) for t in texts]

    def contains(gram: tuple[str, ...]) -> bool:
        size = len(gram)
        return any(tuple(w[i : i + size]) == gram for w in doc for i in range(len(w) - size + 1))

    out = {}
    for task, rows in instances.items():
        for uid, inst_texts in rows:
            covered, offset = set(), 0
            for text in inst_texts:
                toks = words(text)
                spans = [(i, n) for i in range(len(toks) - n + 1)] if len(toks) >= n else []
                if toks and len(toks) < n:
                    spans = [(0, len(toks))]
                for start, size in spans:
                    if contains(tuple(toks[start : start + size])):
                        covered.update(range(offset + start, offset + start + size))
                offset += len(toks)
            if covered:
                out[(task, uid)] = max(len(covered) / offset, out.get((task, uid), 0.0))
    return out


def oracle_report(docs: list[list[str]], instances: dict, n: int, threshold: float) -> dict:
    """Per instance (best score, smallest doc key reaching it); removed doc keys."""
    best: dict[tuple[str, str], tuple[float, int]] = {}
    removed = set()
    for key, texts in enumerate(docs):
        for inst, score in oracle_scores(texts, instances, n).items():
            if inst not in best or score > best[inst][0]:
                best[inst] = (score, key)
            if score >= threshold:
                removed.add(key)
    return {"best": best, "removed": removed}


# ---------------------------------------------------------------- random corpora
VOCAB = ["a", "b", "c", "d", "e", "f", "g", "Zoë", "42", "İ", "ß", "٣", "ﬁ"]


def random_text(rng: random.Random, lo: int, hi: int) -> str:
    toks = [rng.choice(VOCAB) for _ in range(rng.randint(lo, hi))]
    seps = [rng.choice([" ", "  ", ", ", "\n", "-", "_", "?! "]) for _ in toks]
    cased = [t.upper() if rng.random() < 0.2 else t for t in toks]
    return "".join(a + b for a, b in zip(cased, seps, strict=True))


def random_case(seed: int) -> tuple[dict, list[list[str]], int]:
    rng = random.Random(seed)
    n = rng.choice([1, 2, 3, 4, 8])
    instances = {
        task: [
            (f"{task}{i}", [random_text(rng, 0, 14) for _ in range(rng.randint(1, 3))])
            for i in range(rng.randint(0, 6))
        ]
        for task in ("t1", "t2")
    }
    pool = [t for rows in instances.values() for _, texts in rows for t in texts]
    docs = []
    for _ in range(25):
        texts = []
        for _ in range(rng.randint(1, 3)):
            parts = [random_text(rng, 0, 6)]
            if pool and rng.random() < 0.7:  # copies (or pieces) of instance texts
                toks = rng.choice(pool).split(" ")
                i = rng.randint(0, len(toks))
                parts.append(" ".join(toks[i : i + rng.randint(1, 12)]))
            texts.append(" ".join([*parts, random_text(rng, 0, 4)]))
        docs.append(texts)
    docs += [list(d) for d in rng.sample(docs, 5)]  # exact duplicates: ties
    return instances, docs, n


@pytest.mark.parametrize("seed", range(40))
def test_scan_matches_brute_force_oracle(seed: int) -> None:
    instances, docs, n = random_case(seed)
    threshold = random.Random(seed).choice([0.2, 0.5, 0.75, 1.0])
    index = EvalIndex.build(instances, n)
    shard = ShardScan(index, threshold)
    for key, texts in enumerate(docs):
        expected = oracle_scores(texts, instances, n)
        assert index.scan(texts) == expected  # same instances, bit-identical scores
        hits = sorted((*inst, s) for inst, s in expected.items() if s >= threshold)
        assert shard.add(key, texts) == hits
    report = merge_scans(index, [shard.to_json()], threshold)
    want = oracle_report(docs, instances, n, threshold)
    assert report.removed == want["removed"]
    for task, rows in instances.items():
        flagged = [uid for uid, _ in rows if want["best"].get((task, uid), (0, 0))[0] >= threshold]
        stats = report.tasks[task]
        assert stats["flagged_ids"] == flagged and stats["instances"] == len(rows)
        assert stats["best_score"] == {u: want["best"][(task, u)][0] for u in flagged}
        assert stats["examples"] == [
            {
                "instance": u,
                "doc_key": want["best"][(task, u)][1],
                "score": want["best"][(task, u)][0],
            }
            for u in flagged[:5]
        ]
    # The old entry point: same flags, removed rows per train set.
    split = {
        "x": [[words(t) for t in d] for d in docs[:10]],
        "y": [[words(t) for t in d] for d in docs[10:]],
    }
    old = decontaminate(split, instances, n, threshold)
    assert old.removed == {
        "x": {k for k in want["removed"] if k < 10},
        "y": {k - 10 for k in want["removed"] if k >= 10},
    }
    assert {t: s["flagged_ids"] for t, s in old.tasks.items()} == {
        t: s["flagged_ids"] for t, s in report.tasks.items()
    }
    assert all(
        set(s) == {"instances", "flagged", "flagged_ids", "contamination"}
        for s in old.tasks.values()
    )


def test_hash_collision_never_counts() -> None:
    """Force an out-of-vocabulary word to hash like an eval word: the window's hash then
    equals an eval gram's, and only the word-by-word check keeps it from scoring."""
    instances = {"t": [("q", ["the quick brown fox jumps over the lazy dog"])]}
    index = EvalIndex.build(instances, 8)
    index.values[0] = index.values[index.vocab["fox"]]  # id 0 = any word not in the eval set
    text = "the quick brown cat jumps over the lazy dog"
    ids = index._word_ids([words(text)])
    window = _window_hashes(index.values[ids], [8])[8][0]
    assert window in index.tables[8].hashes  # the collision is real
    assert index.scan([text]) == {} and oracle_scores([text], instances, 8) == {}
    assert index.scan(["the quick brown fox jumps over the lazy"]) == {("t", "q"): 8 / 9}


# ---------------------------------------------------------------- the vectorised words()
def test_word_spans_agree_with_words_on_every_code_point() -> None:
    every = " ".join("a" + chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    low, starts, ends, _ = word_spans(every)
    assert [low[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)] == words(every)
    assert word_spans("a\ud800b") is None  # lone surrogate: the caller falls back to words()


def test_text_ids_match_the_vocabulary() -> None:
    instances = random_case(3)[0]
    index = EvalIndex.build(instances, 2)
    assert index.fast.ok
    rng = random.Random(1)
    for _ in range(200):
        text = random_text(rng, 0, 30) + rng.choice(["", " naïve Straße ", "😀x"])
        ids = index.fast.text_ids(text)[0].tolist()
        assert ids == [index.vocab.get(w, 0) for w in words(text)]


def test_text_ids_with_shared_slots() -> None:
    """A vocabulary large enough that words share lookup slots (the overflow path)."""
    vocab = {f"w{i}": i + 1 for i in range(5000)}
    fast = FastWords(vocab)
    assert fast.ok and len(fast.over_hash) > 0
    text = " ".join(f"W{i}, x{i}" for i in range(0, 6000, 3))
    assert fast.text_ids(text)[0].tolist() == [vocab.get(w, 0) for w in words(text)]


def test_word_hash_collision_never_counts() -> None:
    """Make "cat" hash like "fox" in the vocabulary lookup: the ids of the document then spell
    the eval gram, and only the comparison of the words as strings rejects it."""
    instances = {"t": [("q", ["the quick brown fox jumps over the lazy dog"])]}
    index = EvalIndex.build(instances, 8)
    fast = index.fast
    fox = int(np.flatnonzero(fast.ids == index.vocab["fox"])[0])
    fast.hashes[fox] = word_spans("cat")[3][0]
    order = np.argsort(fast.hashes)
    fast.hashes, fast.ids = fast.hashes[order], fast.ids[order]
    fast.make_slots()
    text = "the quick brown cat jumps over the lazy dog"
    assert (
        fast.text_ids(text)[0].tolist()
        == index._word_ids([words(instances["t"][0][1][0])]).tolist()
    )
    assert index.scan([text]) == {}
    assert oracle_scores([text], instances, 8) == {}


# ---------------------------------------------------------------- planted real benchmark items
def load_benchmarks() -> dict[str, list[tuple[str, list[str]]]]:
    def rows(path: pathlib.Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    gsm = rows(FIXTURES / "gsm8k" / "test_sample.jsonl")
    ife = rows(FIXTURES / "ifeval" / "input_sample.jsonl")
    return {
        "gsm8k": [(str(i), [row["question"]]) for i, row in enumerate(gsm)],
        "ifeval": [(str(row["key"]), [row["prompt"]]) for row in ife],
    }


FILLER = (
    "The committee met on Tuesday to review the harbour plans. Rain delayed the survey, and "
    "the engineers asked for another week. Meanwhile the library extended its opening hours "
    "for students preparing for exams."
)


def fullwidth(text: str) -> str:
    """NFKC-equivalent spelling: fullwidth letters and digits, ligatures, no-break spaces."""
    text = text.replace("fi", "\ufb01").replace(" ", "\u00a0")
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def spaced(text: str) -> str:
    """Extra whitespace and newlines between the words."""
    rng = random.Random(len(text))
    return re.sub(" ", lambda _: rng.choice(["  ", "\n", " \t ", "\n\n", "   \n "]), text)


REFORMATS = {
    "verbatim": lambda t: t,
    "upper": str.upper,
    "lower_no_punct": lambda t: re.sub(r"[.,?!;:\"](?=\s|$)", "", t.lower()),
    "punct_changed": lambda t: re.sub(r"[.,?!;:]", " ; ", t).replace("'", "` "),
    "whitespace": lambda t: spaced(t),
    "embedded": lambda t: f"{FILLER}\n\n{t}\n\n{FILLER} {FILLER}",
    "nfkc": fullwidth,
}

PARAPHRASES = {  # same meaning, other words
    ("gsm8k", "0"): "Each day sixteen eggs come from Janet's ducks; she has three at breakfast "
    "and uses four to make muffins for friends, then sells what is left at two dollars apiece. "
    "What does she earn daily?",
    ("gsm8k", "1"): "For one robe you need two bolts of blue fibre plus half as much white "
    "fibre. What is the total number of bolts?",
    ("ifeval", "1001"): "Please compose, in the manner of Shakespeare, a travel plan for my "
    "holiday in Japan, and avoid commas entirely.",
    ("ifeval", "1012"): "Compose a hammock blog article of at least four hundred words that "
    "explains why sleeping in one is good for you.",
}


def planted_corpus() -> tuple[dict, list[list[str]], dict[str, set[int]]]:
    """Documents (normalized as curate does) and which keys are planted / must stay."""
    instances = load_benchmarks()
    rng = random.Random(7)
    docs: list[list[str]] = []
    keys: dict[str, set[int]] = {"planted": set(), "kept": set()}

    def add(texts: list[str], kind: str) -> None:
        keys[kind].add(len(docs))
        docs.append([normalize_text(t) for t in texts])

    for task, rows in instances.items():
        for k, (uid, texts) in enumerate(rows):
            name = list(REFORMATS)[k % len(REFORMATS)]
            add([REFORMATS[name](texts[0])], "planted")
            add(["Solve this.", REFORMATS["embedded"](texts[0]), "Sure, here it is."], "planted")
            if (task, uid) in PARAPHRASES:
                add([PARAPHRASES[task, uid]], "kept")
    for fn in REFORMATS.values():  # every reformat of one item of each benchmark
        for task in instances:
            add([fn(instances[task][3][1][0])], "planted")
    for _ in range(20):  # unrelated text
        sentences = FILLER.split(". ")
        add([". ".join(rng.sample(sentences, len(sentences)))], "kept")
    order = list(range(len(docs)))
    rng.shuffle(order)  # planted documents anywhere in the corpus
    where = {old: new for new, old in enumerate(order)}
    docs = [docs[old] for old in order]
    return instances, docs, {kind: {where[k] for k in ks} for kind, ks in keys.items()}


def test_planted_benchmark_items_found_and_removed() -> None:
    instances, docs, keys = planted_corpus()
    index = EvalIndex.build(instances, 8)
    shard = ShardScan(index, 0.5)
    for key, texts in enumerate(docs):
        hits = shard.add(key, texts)
        if key in keys["planted"]:
            assert hits and all(score == 1.0 for _, _, score in hits), (key, texts)
        else:
            assert hits == [], (key, texts, index.scan(texts))
            assert max(index.scan(texts).values(), default=0.0) < 0.3
    report = merge_scans(index, [shard.to_json()], 0.5)
    for task, rows in instances.items():
        assert report.tasks[task]["flagged_ids"] == [uid for uid, _ in rows]
        assert report.tasks[task]["contamination"] == 1.0
        assert len(report.tasks[task]["examples"]) == 5
    assert report.removed == keys["planted"]
    assert not report.removed & keys["kept"]


def test_nfkc_copy_needs_normalization() -> None:
    """The fullwidth copy is found only after normalize_text (as curate applies it)."""
    instances = load_benchmarks()
    index = EvalIndex.build(instances, 8)
    raw = fullwidth(instances["gsm8k"][2][1][0])
    assert index.scan([raw]) == {}
    assert index.scan([normalize_text(raw)]) == {("gsm8k", "2"): 1.0}


# ---------------------------------------------------------------- shards and JSON
def shard_reports(instances, docs, shards: int, threshold: float = 0.5):
    index = EvalIndex.build(instances, 8)
    bounds = [len(docs) * s // shards for s in range(shards + 1)]
    scans = []
    for lo, hi in itertools.pairwise(bounds):
        shard = ShardScan(index, threshold)
        for key in range(lo, hi):
            shard.add(key, docs[key])
        scans.append(json.loads(json.dumps(shard.to_json())))
    return index, scans


def test_shard_invariance() -> None:
    instances, docs, _ = planted_corpus()
    docs = docs + [list(d) for d in docs[:15]]  # duplicates in other shards: ties
    reports = []
    for shards in (1, 3, 7):
        index, scans = shard_reports(instances, docs, shards)
        reports.append(merge_scans(index, scans, 0.5))
        reports.append(merge_scans(index, scans[::-1], 0.5))  # gather order does not matter
    first = reports[0]
    assert first.removed and all(
        r.tasks == first.tasks and r.removed == first.removed for r in reports
    )
    # A shard scanned with a lower threshold may be gathered at a higher one, not the reverse.
    index, low = shard_reports(instances, docs, 3, threshold=0.3)
    assert merge_scans(index, low, 0.5).removed == first.removed
    with pytest.raises(ValueError, match="above threshold"):
        merge_scans(index, low, 0.2)
    other = EvalIndex.build({"gsm8k": instances["gsm8k"]}, 8)
    with pytest.raises(ValueError, match="not made against this eval index"):
        merge_scans(other, low, 0.5)


def test_to_json_round_trips_and_is_deterministic() -> None:
    instances, docs, _ = planted_corpus()
    dumps = []
    for _ in range(2):
        index = EvalIndex.build(instances, 8)
        shard = ShardScan(index, 0.5)
        for key in reversed(range(len(docs))):  # any order of adding
            shard.add(key, docs[key])
        state = shard.to_json()
        assert json.loads(json.dumps(state)) == state
        dumps.append(json.dumps(state, sort_keys=True))
    assert dumps[0] == dumps[1]
    assert json.loads(dumps[0])["documents"] == len(docs)


def test_colliding_seed_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed 0 made to give every word the same value (all grams of a length collide): the
    index moves on to seed 1 and still scores exactly."""
    from stages.curate import evalindex

    real = evalindex._word_values
    monkeypatch.setattr(
        evalindex,
        "_word_values",
        lambda count, seed: real(count, seed) * 0 if seed == 0 else real(count, seed),
    )
    instances, docs, n = random_case(5)
    index = EvalIndex.build(instances, n)
    assert index.seed == 1
    for texts in docs:
        assert index.scan(texts) == oracle_scores(texts, instances, n)
