"""curate on a recipe's own sources, stage by stage (no Snakemake): shard batches gathered give
the payload one in-process shard gives; weighted mixing; filters, PII and rejects recorded per
document; a source above curate.reject_rate_max fails naming its file:line."""

from __future__ import annotations

import json
import pathlib
import random

import pytest

from stages.curate.gather import CurateError
from tests.stages.micro import micro_config, run_stage

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "cats",
    "dogs",
    "birds",
    "rivers",
]


def prose(rng: random.Random, sentences: int = 6) -> str:
    """English-like text with stop words and punctuation (passes Gopher's rules)."""
    return " ".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(9, 14))).capitalize() + "."
        for _ in range(sentences)
    )


def source_artifact(tmp: pathlib.Path, name: str, lines: list[str], **entry) -> pathlib.Path:
    data = tmp / f"{name}.jsonl"
    data.write_text("".join(lines), encoding="utf-8")
    config = {"kind": "pretrain", "name": name, "path": str(data), "format": "jsonl", **entry}
    config = {"text_key": "text", "messages_key": "messages", "weight": None, **config}
    config |= {"license": None, "split": None, "verifier": None, "filters": None} | entry
    out = tmp / f"source-{name}"
    run_stage("source", config | {"seed": 0, "threads": 1}, {}, out)
    return out


def payload(root: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory, world_artifact) -> dict[str, pathlib.Path]:
    tmp = tmp_path_factory.mktemp("sources")
    rng = random.Random(3)
    web = [json.dumps({"id": f"w{i}", "text": prose(rng)}) + "\n" for i in range(300)]
    web[10] = (
        json.dumps({"id": "mail", "text": prose(rng) + " Write to ann@example.org now."}) + "\n"
    )
    web[20] = json.dumps({"id": "spam", "text": "buy " * 80}) + "\n"  # Gopher repetition
    web[30] = '{"id": "bad", "text": \n'
    books = [json.dumps({"id": f"b{i}", "text": prose(rng, 12)}) + "\n" for i in range(100)]
    return {
        "source_pretrain.web": source_artifact(tmp, "web", web, weight=3.0),
        "source_pretrain.books": source_artifact(tmp, "books", books, weight=1.0),
        "world": world_artifact,
    }


def curate_config(shards: int, **extra) -> dict:
    return micro_config("curate") | {
        "shards": shards,
        "pii": True,
        "filters": {"gopher_repetition": {}},
        "fuzzy_dedup": {"enabled": True, "ngram": 5, "bands": 14, "rows": 8},
        **extra,
    }


def run_sharded(
    tmp_path: pathlib.Path, sources: dict, batches: tuple[tuple[int, int], ...], name: str
) -> pathlib.Path:
    """curate_shard jobs over ``batches`` of shards, then the gathering curate job."""
    shards = batches[-1][1]
    shard_inputs = {}
    for first, last in batches:
        config = curate_config(shards) | {"first": first, "last": last}
        for key in ("dedup", "decontaminate", "reject_rate_max", "shards_per_job"):
            config.pop(key)
        out = tmp_path / f"{name}-shard-{first}"
        run_stage("curate_shard", config, sources, out)
        shard_inputs[f"shard_{first:05d}_{last:05d}"] = out
    run_stage("curate", curate_config(shards), sources | shard_inputs, tmp_path / name)
    return tmp_path / name


def test_shard_batches_gather_to_the_one_shard_payload(tmp_path, sources) -> None:
    run_stage("curate", curate_config(1), sources, tmp_path / "one")
    five = run_sharded(tmp_path, sources, ((0, 2), (2, 5)), "five")
    assert payload(tmp_path / "one") == payload(five)


def test_mix_filters_pii_and_rejects_are_recorded(tmp_path, sources) -> None:
    out = tmp_path / "out"
    run_stage("curate", curate_config(1), sources, out)
    report = json.loads((out / "curation.json").read_text())["pretrain"]
    mix = report["mix"]
    kept = {s: report["sources"][s]["bytes_out"] for s in ("web", "books")}
    # web is weighted 3:1 but has only ~1.5x books' bytes: web (the scarcest per weight) is
    # kept whole, books sampled down to a third of web's bytes.
    assert mix["web"]["rate"] == 1.0 and 0.4 < mix["books"]["rate"] < 0.6
    assert kept["web"] / kept["books"] == pytest.approx(3.0, rel=0.15)
    decisions = {d.get("id"): d for d in map(json.loads, (out / "decisions/pretrain.jsonl").open())}
    assert decisions["web/spam"]["decision"] == "filtered"
    assert decisions["web/spam"]["reason"].startswith("gopher_repetition:")
    assert decisions["web/mail"]["pii"] == {"email_address": 1}
    rows = {r["id"]: r for r in map(json.loads, (out / "data/pretrain.jsonl").open())}
    assert decisions["web/mail"]["decision"] == "kept"  # web is kept whole (rate 1)
    assert "ann@example.org" not in rows["web/mail"]["text"]
    assert "|||EMAIL_ADDRESS|||" in rows["web/mail"]["text"]
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").open()]
    assert [(r["source"], r["line"]) for r in rejects] == [("web", 31)]
    assert rejects[0]["file"].endswith("web.jsonl")
    assert {d["decision"] for d in decisions.values()} >= {"kept", "mixed_out", "filtered"}


def test_a_source_above_the_reject_rate_fails_naming_its_lines(tmp_path, world_artifact) -> None:
    rng = random.Random(5)
    lines = [json.dumps({"id": i, "text": prose(rng)}) + "\n" for i in range(50)]
    lines[7] = "not json\n"
    lines[9] = json.dumps({"id": 9, "text": 12}) + "\n"
    src = source_artifact(tmp_path, "shaky", lines)
    inputs = {"source_pretrain.shaky": src, "world": world_artifact}
    with pytest.raises(CurateError, match=r"shaky.jsonl:8: malformed JSON") as error:
        run_stage("curate", curate_config(1), inputs, tmp_path / "out")
    assert "2 of 50 records rejected" in str(error.value)
    assert "curate.reject_rate_max" in str(error.value)
    loose = curate_config(1, reject_rate_max=0.05)
    run_stage("curate", loose, inputs, tmp_path / "loose")
    report = json.loads((tmp_path / "loose" / "curation.json").read_text())["pretrain"]
    assert report["rejected"] == 2 and report["documents_out"] == 48


def test_mix_keeps_the_scarcest_whole_and_survives_an_empty_source() -> None:
    from stages.curate.gather import KindState, mix_pass

    state = KindState()
    for position in range(400):  # a: 300 docs of 10 bytes, b: 100 docs of 10 bytes
        source = "a" if position < 300 else "b"
        state.sizes[position] = (source, position % 300, 10)
    report = mix_pass(state, {"a": 1.0, "b": 1.0, "empty": 2.0}, seed=0)
    assert report["b"]["rate"] == 1.0 and report["empty"]["rate"] == 0.0
    assert report["a"]["rate"] == pytest.approx(100 / 300)
    kept_a = sum(1 for p in range(300) if p not in state.decided)
    assert 80 <= kept_a <= 120  # ~ as many bytes as b
    assert all(p not in state.decided for p in range(300, 400))


def test_a_source_file_changed_after_its_source_job_is_refused(tmp_path, world_artifact) -> None:
    from stages.curate.feeds import FeedError

    rng = random.Random(9)
    lines = [json.dumps({"id": i, "text": prose(rng)}) + "\n" for i in range(20)]
    src = source_artifact(tmp_path, "moving", lines)
    inputs = {"source_pretrain.moving": src, "world": world_artifact}
    data = tmp_path / "moving.jsonl"
    with data.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "late", "text": prose(rng)}) + "\n")
    with pytest.raises(FeedError, match=r"moving.jsonl changed since its source job hashed it"):
        run_stage("curate", curate_config(1), inputs, tmp_path / "out")
    data.unlink()
    with pytest.raises(FeedError, match=r"moving.jsonl: No such file"):
        run_stage("curate", curate_config(1), inputs, tmp_path / "out2")


def test_the_gather_refuses_an_incomplete_set_of_shards(tmp_path, sources) -> None:
    config = curate_config(4) | {"first": 0, "last": 2}
    for key in ("dedup", "decontaminate", "reject_rate_max", "shards_per_job"):
        config.pop(key)
    run_stage("curate_shard", config, sources, tmp_path / "half")
    inputs = sources | {"shard_00000_00002": tmp_path / "half"}
    with pytest.raises(CurateError, match=r"hold shards \[0, 1\] of \[4\], not 0\.\.3 of 4"):
        run_stage("curate", curate_config(4), inputs, tmp_path / "out")


def chat(rng: random.Random, index: int) -> str:
    """One sft row (Tulu 3 `messages`), distinct per index."""
    messages = [
        {"role": "user", "content": f"Question {index}: {prose(rng, 1)}"},
        {"role": "assistant", "content": prose(rng, 2)},
    ]
    return json.dumps({"id": f"c{index}", "messages": messages}) + "\n"


@pytest.fixture(scope="module")
def sft_sources(tmp_path_factory, world_artifact) -> dict[str, pathlib.Path]:
    """sft sources mixed by ratio: tulu (40 rows, ratio 1.0) and flan (61 distinct rows and one
    exact duplicate, ratio 0.5: int(0.5 x 61) = 30 kept)."""
    tmp = tmp_path_factory.mktemp("sft-sources")
    rng = random.Random(11)
    tulu = [chat(rng, i) for i in range(40)]
    flan = [chat(rng, 100 + i) for i in range(61)]
    flan.insert(20, flan[5])  # decided before mixing: not part of what the ratio applies to
    return {
        "source_sft.tulu": source_artifact(tmp, "tulu", tulu, kind="sft", ratio=1.0),
        "source_sft.flan": source_artifact(tmp, "flan", flan, kind="sft", ratio=0.5),
        "world": world_artifact,
    }


def test_sft_ratios_keep_exact_seeded_counts(tmp_path, sft_sources, sources) -> None:
    from stages.curate.gather import _uniform

    record = json.loads((sft_sources["source_sft.flan"] / "source.json").read_text())
    assert record["ratio"] == 0.5
    unset = json.loads((sources["source_pretrain.web"] / "source.json").read_text())
    assert "ratio" not in unset  # a source without a ratio writes the record it always did
    config = curate_config(1)
    run_stage("curate", config, sft_sources, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "curation.json").read_text())["sft"]
    assert report["mix"] == {
        "flan": {"ratio": 0.5, "available": 61, "kept": 30},
        "tulu": {"ratio": 1.0, "available": 40, "kept": 40},
    }
    assert report["sources"]["flan"]["mixed_out"] == 31
    assert report["sources"]["flan"]["exact_duplicate"] == 1
    rows = [json.loads(x) for x in (tmp_path / "out" / "data/sft.jsonl").open()]
    assert sum(r["source"] == "tulu" for r in rows) == 40
    assert sum(r["source"] == "flan" for r in rows) == 30
    decisions = [json.loads(x) for x in (tmp_path / "out" / "decisions/sft.jsonl").open()]
    flan = [d for d in decisions if d["source"] == "flan"]
    mixed = [d for d in flan if d["decision"] == "mixed_out"]
    assert len(mixed) == 31 and all(d["ratio"] == 0.5 for d in mixed)
    # The kept half: the 30 smallest seeded draws among flan's 61 available lines.
    available = [d["line"] - 1 for d in flan if d["decision"] in ("kept", "mixed_out")]
    draws = sorted(available, key=lambda local: _uniform(config["seed"], "flan", local))
    kept = sorted(d["line"] - 1 for d in flan if d["decision"] == "kept")
    assert kept == sorted(draws[:30])
    other = tmp_path / "seed-7"
    run_stage("curate", curate_config(1) | {"seed": 7}, sft_sources, other)
    again = [json.loads(x) for x in (other / "decisions/sft.jsonl").open()]
    kept_7 = sorted(
        d["line"] - 1 for d in again if d["source"] == "flan" and d["decision"] == "kept"
    )
    assert len(kept_7) == 30 and kept_7 != kept  # another seed: another half, the same count


def test_sft_ratio_mix_is_the_same_with_several_shards(tmp_path, sft_sources) -> None:
    run_stage("curate", curate_config(1), sft_sources, tmp_path / "one")
    three = run_sharded(tmp_path, sft_sources, ((0, 1), (1, 3)), "three")
    assert payload(tmp_path / "one") == payload(three)


def test_ratio_keeps_floor_counts_nested_across_ratios() -> None:
    from stages.curate.gather import KindState, ratio_pass

    kept = {}
    for ratio in (0.1, 0.29, 0.5, 1.0):
        state = KindState()
        for position in range(100):
            state.sizes[position] = ("a", position, 10)
        state.decided[3] = {"decision": "exact_duplicate", "of": "a/0"}
        report = ratio_pass(state, {"a": ratio}, seed=0)
        kept[ratio] = {p for p in range(100) if p not in state.decided}
        assert report["a"] == {"ratio": ratio, "available": 99, "kept": int(ratio * 99)}
        assert len(kept[ratio]) == int(ratio * 99)
    assert kept[0.1] < kept[0.29] < kept[0.5] < kept[1.0]  # the smallest draws: one ranking


def test_curate_refuses_weight_and_ratio_in_one_kind(tmp_path, world_artifact) -> None:
    rng = random.Random(13)
    lines = [chat(rng, i) for i in range(10)]
    inputs = {
        "source_sft.a": source_artifact(tmp_path, "a", lines, kind="sft", weight=1.0),
        "source_sft.b": source_artifact(tmp_path, "b", lines, kind="sft", ratio=0.5),
        "world": world_artifact,
    }
    with pytest.raises(CurateError, match=r"sources.sft: a name a weight and b a ratio"):
        run_stage("curate", curate_config(1), inputs, tmp_path / "out")
