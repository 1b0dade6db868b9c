"""world stage: layout, content correctness, held-out hygiene, planting, determinism."""

from __future__ import annotations

import json
import pathlib
import re

import jsonschema
import pytest
import yaml

from evals.verifiers import VERIFIERS, get_verifier
from stages.world.vocab import EVAL_STORY_NAMES, NAMES
from tests.stages.micro import MICRO_CONFIGS, SCHEMA_DIR, micro_config, run_stage

TASKS = ("arith_gen", "arith_mc", "facts_mc", "tom_mc")
TRAIN = ("pretrain", "midtrain", "sft", "preference", "rlvr")
EXPR = re.compile(r"\b(\d+) ([+-]) (\d+)\b")


def rows(path: pathlib.Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:  # keys sorted, as the contract requires
        assert list(json.loads(line)) == sorted(json.loads(line)), line
    return [json.loads(line) for line in lines]


def texts(train_set: str, row: dict) -> list[str]:
    if train_set == "pretrain":
        return [row["text"]]
    keys = {
        "midtrain": ["messages"],
        "sft": ["messages"],
        "preference": ["prompt", "chosen", "rejected"],
        "rlvr": ["prompt"],
    }
    return [m["content"] for k in keys[train_set] for m in row[k]]


@pytest.fixture(scope="module")
def world(world_artifact: pathlib.Path) -> dict:
    data = {name: rows(world_artifact / "train" / f"{name}.jsonl") for name in TRAIN}
    data |= {task: rows(world_artifact / "eval" / f"{task}.jsonl") for task in TASKS}
    data["planted"] = json.loads((world_artifact / "planted.json").read_text())
    data["index"] = json.loads((world_artifact / "eval" / "index.json").read_text())
    return data


def training_texts(world: dict, skip_planted: bool) -> list[str]:
    planted = set(world["planted"]["documents"]["pretrain"] + world["planted"]["documents"]["sft"])
    return [
        text
        for name in TRAIN
        for row in world[name]
        if not (skip_planted and row["id"] in planted)
        for text in texts(name, row)
    ]


def test_layout_and_sizes(world_artifact: pathlib.Path, world: dict) -> None:
    cfg = MICRO_CONFIGS["world"]
    files = sorted(p.relative_to(world_artifact).as_posix() for p in world_artifact.rglob("*.*"))
    assert files == sorted(
        [f"train/{n}.jsonl" for n in TRAIN]
        + [f"eval/{t}.jsonl" for t in TASKS]
        + ["eval/index.json", "planted.json"]
    )
    assert (
        len(world["pretrain"])
        == cfg["fact_docs"]
        + cfg["arithmetic_docs"]
        + cfg["stories"]
        + cfg["sentence_docs"]
        + cfg["planted"]
    )
    assert len(world["sft"]) == cfg["sft"] + cfg["planted"]
    assert len(world["midtrain"]) == cfg["midtrain"]
    assert len(world["preference"]) == cfg["preference"]
    assert len(world["rlvr"]) == cfg["rlvr"]
    for task in TASKS:
        assert len(world[task]) == cfg["eval_size"][task]
    for name in TRAIN:
        ids = [row["id"] for row in world[name]]
        assert len(set(ids)) == len(ids)
    assert {row["kind"] for row in world["pretrain"]} == {"fact", "arithmetic", "story", "sentence"}


def test_eval_index_and_mc_format(world: dict) -> None:
    index = world["index"]
    assert sorted(index) == sorted(TASKS)
    assert index["arith_gen"]["type"] == "generate"
    assert index["arith_gen"]["verifier"] == "numeric_answer"
    for task in TASKS[1:]:
        assert index[task]["type"] == "multiple_choice"
        for item in world[task]:
            assert len(item["choices"]) == 4 == len(set(item["choices"]))
            assert 0 <= item["label"] < 4
    for task, spec in index.items():
        assert spec["file"] == f"eval/{task}.jsonl" and spec["text_fields"] == ["question"]
    labels = [item["label"] for item in world["arith_mc"] + world["facts_mc"]]
    assert len(set(labels)) > 1  # the right answer is not always in one position


def test_arithmetic_is_correct_everywhere(world: dict) -> None:
    """Every worked example and eval answer in the world is right."""
    qa = re.compile(r"What is (\d+) ([+-]) (\d+)\?\nAnswer: (\d+)")
    prose = re.compile(r"\b(\d+) (plus|minus) (\d+) is (\d+)\.")
    checked = 0
    for doc in world["pretrain"]:
        for a, op, b, c in qa.findall(doc["text"]):
            assert eval(f"{a} {op} {b}") == int(c), doc
            checked += 1
        for a, op, b, c in prose.findall(doc["text"]):
            assert eval(f"{a} {'+' if op == 'plus' else '-'} {b}") == int(c), doc
            checked += 1
    for item in world["arith_gen"]:
        a, op, b = EXPR.search(item["question"]).groups()
        assert eval(f"{a} {op} {b}") == int(item["answer"]) >= 0
    for item in world["arith_mc"]:
        a, op, b = EXPR.search(item["question"]).groups()
        assert item["choices"][item["label"]] == str(eval(f"{a} {op} {b}"))
    for row in world["sft"]:
        if row["kind"] == "arithmetic" and row["id"] not in world["planted"]["documents"]["sft"]:
            a, op, b = EXPR.search(row["messages"][0]["content"]).groups()
            assert row["messages"][1]["content"] == f"The answer is {eval(f'{a} {op} {b}')}."
    assert checked > 100  # plenty of worked examples


def test_heldout_arithmetic_never_in_training(world: dict) -> None:
    held = {tuple(map(int, EXPR.search(i["question"]).group(1, 3))) for t in TASKS[:2]
            for i in world[t]}  # fmt: skip
    assert len(held) == 40
    seen = set()
    for text in training_texts(world, skip_planted=True):
        seen |= {(int(a), int(b)) for a, _, b in EXPR.findall(text)}
        words = re.findall(r"(\d+) (?:plus|minus|and|take away) (\d+)", text)
        seen |= {(int(a), int(b)) for a, b in words}
        for pattern in (r"add (\d+) to (\d+)", r"take (\d+) away from (\d+)"):
            seen |= {(int(a), int(b)) for b, a in re.findall(pattern, text)}
    assert seen and not held & seen


def test_heldout_facts_and_story_names_never_asked_in_training(world: dict) -> None:
    training = "\n".join(training_texts(world, skip_planted=True))
    for item in world["facts_mc"]:
        assert item["question"] not in training
    for name in EVAL_STORY_NAMES:
        assert name not in training
    assert any(name in item["question"] for item in world["tom_mc"] for name in EVAL_STORY_NAMES)


def test_facts_answerable_from_pretraining(world: dict) -> None:
    facts_docs = [d["text"] for d in world["pretrain"] if d["kind"] == "fact"]
    for item in world["facts_mc"]:
        (name,) = [n for n in NAMES if re.search(rf"\b{n}\b", item["question"])]
        answer = item["choices"][item["label"]]
        assert any(name in d and answer in d for d in facts_docs), item


def test_tom_answers_follow_the_story(world: dict) -> None:
    for item in world["tom_mc"]:
        story, answer = item["question"], item["choices"][item["label"]]
        first = re.search(r"puts the \w+ in (the \w+)\.", story).group(1)
        moved = re.search(r"to (the \w+)", story).group(1)
        assert answer == (moved if "while" in story else first)


def test_planted_copies_are_verbatim(world: dict) -> None:
    planted = world["planted"]
    by_id = {i["id"]: i for t in TASKS for i in world[t]}
    assert len(planted["ids"]) == MICRO_CONFIGS["world"]["planted"]
    assert {i.split("-")[0] for i in planted["ids"]} == set(TASKS)  # round-robin over tasks
    pretrain = {d["id"]: d for d in world["pretrain"]}
    sft = {d["id"]: d for d in world["sft"]}
    for uid, doc_id, conv_id in zip(
        planted["ids"], planted["documents"]["pretrain"], planted["documents"]["sft"], strict=True
    ):
        question = by_id[uid]["question"]
        assert question in pretrain[doc_id]["text"]
        assert sft[conv_id]["messages"][0]["content"] == question


def test_preference_and_rlvr_agree_with_verifiers(world: dict) -> None:
    for row in world["rlvr"]:
        assert row["verifier"] in VERIFIERS
        if row["verifier"] == "numeric_answer":
            a, op, b = EXPR.search(row["prompt"][0]["content"]).groups()
            assert row["ground_truth"] == str(eval(f"{a} {op} {b}"))
    for row in world["preference"]:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        prompt = row["prompt"][0]["content"]
        if row["kind"] in ("lowercase", "max_words"):
            limit = re.search(r"at most (\d+) word", prompt)
            truth = limit.group(1) if limit else ""
            verify = get_verifier(row["kind"])
            assert verify(chosen, truth) == 1.0 and verify(rejected, truth) == 0.0, row
        elif row["kind"] == "arithmetic":
            a, op, b = EXPR.search(prompt).groups()
            truth = str(eval(f"{a} {op} {b}"))
            verify = get_verifier("numeric_answer")
            assert verify(chosen, truth) == 1.0 and verify(rejected, truth) == 0.0
        else:
            assert chosen != rejected


def test_schema_defaults_and_micro_validate() -> None:
    schema = yaml.safe_load((SCHEMA_DIR / "world.schema.yaml").read_text())
    tiny = {k: v["default"] for k, v in schema["properties"].items()}
    jsonschema.validate(tiny, schema)
    micro = {k: v for k, v in MICRO_CONFIGS["world"].items() if k not in ("seed", "threads")}
    jsonschema.validate(micro, schema)


def test_bad_config_names_the_key(tmp_path: pathlib.Path) -> None:
    cfg = micro_config("world")
    cfg["eval_size"] = dict(cfg["eval_size"], arith_gen=100)
    with pytest.raises(ValueError, match="operand_max"):
        run_stage("world", cfg, {}, tmp_path / "a")
    cfg = micro_config("world") | {"fact_docs": 3}
    with pytest.raises(ValueError, match="fact_docs"):
        run_stage("world", cfg, {}, tmp_path / "b")


def payload(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_bitwise_deterministic_and_seeded(tmp_path: pathlib.Path) -> None:
    run_stage("world", micro_config("world"), {}, tmp_path / "a")
    run_stage("world", micro_config("world"), {}, tmp_path / "b")
    run_stage("world", micro_config("world", seed=1), {}, tmp_path / "c")
    assert payload(tmp_path / "a") == payload(tmp_path / "b")
    assert (
        payload(tmp_path / "a")["train/pretrain.jsonl"]
        != payload(tmp_path / "c")["train/pretrain.jsonl"]
    )
