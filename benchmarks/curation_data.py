"""Generated data for ``benchmarks/curation.py``: an English-like JSONL corpus and GSM8K-like
eval sets, both from a seeded RNG (same seed, same bytes).

Corpus: documents of 1-4 KB, paragraphs of sentences drawn from a Zipf word-frequency model
over English function words and generated content words. Planted so that every stage does real
work: ~5 % near-duplicates of an earlier document (a few words replaced), ~0.5 % documents
holding an eval instance (question and answer) verbatim or lightly edited, ~3 % low-quality
documents (too short, repeated lines, bullet lists, boilerplate); about half of the
documents hold a non-ASCII word (accents, curly quotes), as web text does. The corpus is written as
files of ``file_mb`` MiB of text, so a smaller corpus size is a prefix of the larger one. Planted
eval items come from the first 200 instances, so every eval-set size (a prefix of the largest
one) contains them.
"""

from __future__ import annotations

import json
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIB = 1 << 20


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


FUNCTION_WORDS = _split(
    "the of and to a in is that for it with as was on be have by at this are from or "
    "had not but which they his we an were her she there been one their all would will "
    "has more so can if when what about who also into no them some than other its then "
    "only these two may after first most over new such very through"
)
SYLLABLES = _split(
    "ka lo mi ra ten sor vel an is ur om pe tra gin dor ma lex ni fo ber cal stu ven"
)
NAMES = _split(
    "Natalia Weng Betty Julie James Mark Albert Ken Alexis Tina Randy Joy Carla Hans Lena Omar "
    "Priya Diego Mei Sven Aisha Tom Rosa Ivan Nora Felix Ada Ravi Zoe Emil"
)
OBJECTS = _split(
    "apples clips marbles stickers pencils cookies books cards shells coins stamps eggs "
    "balloons candles bottles tickets flowers tiles buttons ribbons"
)
# non-ASCII words at mid ranks, so that ~half of the documents are not pure ASCII (as web text)
ACCENTED = _split("café naïve résumé façade déjà über coöperate “quoted” señor piñata")
PLACES = _split("market school park bakery library farm store museum garden harbor")
RECENT = 4000  # near-duplicate sources kept
PLANT_POOL = 200  # planted eval items come from the first PLANT_POOL instances


@dataclass
class Plants:
    """Ground truth of what was planted (document ids)."""

    near_duplicates: dict[int, int] = field(default_factory=dict)  # copy id -> source id
    eval_items: dict[int, str] = field(default_factory=dict)  # doc id -> instance id
    low_quality: list[int] = field(default_factory=list)


class TextModel:
    """Seeded Zipf word model producing sentences, paragraphs and documents."""

    def __init__(self, seed: int, vocab: int = 30000):
        self.rng = np.random.default_rng(seed)
        words = list(FUNCTION_WORDS)
        seen = set(words)
        while len(words) < vocab:
            parts = self.rng.choice(SYLLABLES, size=int(self.rng.integers(1, 5)))
            word = "".join(parts)
            if word not in seen:
                seen.add(word)
                words.append(word)
        for rank, word in zip(range(150, 1500, 135), ACCENTED, strict=True):
            words.insert(rank, word)
        self.vocab = np.array(words[:vocab], dtype=object)
        weights = 1.0 / np.arange(1, vocab + 1) ** 1.05
        self.cdf = np.cumsum(weights / weights.sum())

    def words(self, n: int) -> list[str]:
        draws = np.searchsorted(self.cdf, self.rng.random(n), side="right")
        return self.vocab[np.minimum(draws, len(self.vocab) - 1)].tolist()

    def sentence(self, words: list[str]) -> str:
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."

    def document(self, target_bytes: int) -> str:
        words = self.words(max(target_bytes // 6, 12))
        lengths = self.rng.integers(6, 22, size=len(words) // 6 + 1)
        sentences, at = [], 0
        for length in lengths:
            if at >= len(words):
                break
            sentences.append(self.sentence(words[at : at + length]))
            at += length
        paragraphs, at = [], 0
        while at < len(sentences):
            take = int(self.rng.integers(2, 7))
            paragraphs.append(" ".join(sentences[at : at + take]))
            at += take
        return "\n\n".join(paragraphs)

    def edit(self, text: str, edits: int) -> str:
        """Replace ``edits`` random words of ``text``."""
        tokens = text.split(" ")
        spots = self.rng.integers(0, len(tokens), size=edits)
        for spot, word in zip(spots, self.words(edits), strict=True):
            tokens[int(spot)] = word
        return " ".join(tokens)

    def low_quality(self) -> str:
        kind = int(self.rng.integers(0, 4))
        if kind == 0:  # too short
            return self.sentence(self.words(12))
        if kind == 1:  # one line repeated
            return "\n".join([self.sentence(self.words(10))] * 40)
        if kind == 2:  # bullet list of fragments
            return "\n".join("- " + " ".join(self.words(3)) for _ in range(60))
        lines = ["Please enable JavaScript to view this page.", "Lorem ipsum dolor sit amet."]
        return "\n".join(lines * 10 + [self.document(600)])


def eval_instance(model: TextModel, index: int) -> tuple[str, list[str]]:
    """One GSM8K-like (id, [question, answer]) from a template, names, numbers and a context
    clause from the word model (so that instances share few 8-grams)."""
    rng = model.rng
    name, other = rng.choice(NAMES, size=2, replace=False)
    thing, place = rng.choice(OBJECTS), rng.choice(PLACES)
    a, b, c = (int(x) for x in rng.integers(2, 90, size=3))
    context = model.sentence(model.words(int(rng.integers(8, 16))))
    kind = index % 3
    if kind == 0:
        question = (
            f"{name} has {a} {thing}. {context} At the {place} {name} buys {b} more {thing} "
            f"and gives {c} to {other}. How many {thing} does {name} have now?"
        )
        answer = (
            f"{name} has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {thing} after the {place}. "
            f"After giving {c} away {name} has {a + b} - {c} = <<{a + b}-{c}={a + b - c}>>"
            f"{a + b - c} {thing}.\n#### {a + b - c}"
        )
    elif kind == 1:
        question = (
            f"{other} sells {thing} at the {place} for {b} dollars each. {context} "
            f"{name} buys {a} of them. How much money does {name} spend?"
        )
        answer = (
            f"{name} pays {a} * {b} = <<{a}*{b}={a * b}>>{a * b} dollars for the {thing}."
            f"\n#### {a * b}"
        )
    else:
        question = (
            f"A box at the {place} holds {a} {thing}. {context} {name} fills {b} boxes and "
            f"{other} fills {c} boxes. How many {thing} do they pack together?"
        )
        answer = (
            f"They fill {b} + {c} = <<{b}+{c}={b + c}>>{b + c} boxes, so they pack "
            f"{b + c} * {a} = <<{b + c}*{a}={(b + c) * a}>>{(b + c) * a} {thing}."
            f"\n#### {(b + c) * a}"
        )
    return f"gsm_synth-{index:06d}", [question, answer]


def eval_set(count: int, seed: int) -> list[tuple[str, list[str]]]:
    """``count`` instances; a smaller count is a prefix of a larger one."""
    model = TextModel(seed + 1, vocab=8000)
    return [eval_instance(model, i) for i in range(count)]


def lightly_edited(model: TextModel, texts: list[str]) -> str:
    """An eval instance as it may appear in web text: verbatim, or lowercased with its
    punctuation changed, or with one word replaced."""
    text = "\n".join(texts)
    kind = int(model.rng.integers(0, 3))
    if kind == 1:
        return text.lower().replace("?", " ?").replace("<<", "(").replace(">>", ") ")
    if kind == 2:
        return model.edit(text, 1)
    return text


def write_corpus(
    directory: Path, size_mb: int, file_mb: int, instances: list, seed: int
) -> tuple[list[dict], Plants]:
    """Write ``size_mb`` MiB of text as JSONL files of ``file_mb`` MiB; per file its path, doc
    count, text bytes and file bytes."""
    model = TextModel(seed)
    plants, recent, files, doc_id = Plants(), [], [], 0
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(-(-size_mb // file_mb)):
        path = directory / f"part-{number:04d}.jsonl"
        text_bytes = docs = 0
        with open(path, "w", encoding="utf-8") as handle:
            while text_bytes < file_mb * MIB:
                roll = model.rng.random()
                if roll < 0.05 and recent:
                    source_id, source = recent[int(model.rng.integers(0, len(recent)))]
                    text = model.edit(source, int(model.rng.integers(2, 6)))
                    plants.near_duplicates[doc_id] = source_id
                elif roll < 0.08:
                    text = model.low_quality()
                    plants.low_quality.append(doc_id)
                else:
                    text = model.document(int(model.rng.integers(1000, 4000)))
                    if roll < 0.085:
                        uid, texts = instances[int(model.rng.integers(0, PLANT_POOL))]
                        paragraphs = text.split("\n\n")
                        spot = int(model.rng.integers(0, len(paragraphs) + 1))
                        paragraphs.insert(spot, lightly_edited(model, texts))
                        text = "\n\n".join(paragraphs)
                        plants.eval_items[doc_id] = uid
                    elif len(recent) < RECENT:
                        recent.append((doc_id, text))
                    elif roll < 0.2:  # random replacement: sources reach back across files
                        recent[int(model.rng.integers(0, RECENT))] = (doc_id, text)
                handle.write(json.dumps({"id": f"doc-{doc_id}", "text": text}) + "\n")
                text_bytes += len(text.encode("utf-8"))
                docs += 1
                doc_id += 1
        files.append({"path": str(path), "docs": docs, "text_bytes": text_bytes})
        files[-1]["file_bytes"] = path.stat().st_size
    return files, plants


def read_texts(paths: list[str]):
    """(doc index, text) of every line of the files, in order (the benchmark's JSONL reader)."""
    index = 0
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                yield index, json.loads(line)["text"]
                index += 1


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children (getrusage:
    microseconds; ``os.times`` counts 10 ms clock ticks, so a fast read measured 0)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Stopwatch:
    """Wall and CPU seconds per named stage: ``with watch("scan"): ...``."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.wall[name] = round(time.perf_counter() - wall, 3)
            self.cpu[name] = round(cpu_seconds() - cpu, 3)

    def record(self, decision: tuple[str, ...] | None = None) -> dict:
        """``stages_s``/``stages_cpu_s``, and ``decision_cpu_s``: the CPU of the stages that
        decide what is dropped (all by default)."""
        names = decision or tuple(self.cpu)
        return {
            "stages_s": dict(self.wall),
            "stages_cpu_s": dict(self.cpu),
            "decision_cpu_s": round(sum(self.cpu[n] for n in names), 3),
        }
