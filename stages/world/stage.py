"""world stage: build the synthetic tiny world and write train/, eval/ and planted.json.

All randomness comes from ``random.Random(config["seed"])``: one child RNG per section, drawn
in a fixed order, so resizing one section does not reshuffle the others.
"""

from __future__ import annotations

import pathlib
import random

from stages.common.job import Input, JobContext
from stages.common.jsonl import write_json, write_jsonl
from stages.world.arithmetic import pair_problems, split_pairs
from stages.world.evalsets import TASKS, eval_index, eval_sets, plant
from stages.world.facts import make_people, split_facts
from stages.world.sources import (
    Pools,
    preference_pairs,
    pretrain_docs,
    rlvr_prompts,
    sft_conversations,
)

SECTIONS = (
    "people", "split", "pretrain", "sft", "preference", "rlvr", "eval", "plant", "mix", "midtrain",
)  # fmt: skip


def _mix_in(rng: random.Random, rows: list[dict], extra: list[dict], prefix: str) -> list[str]:
    """Shuffle ``extra`` into ``rows`` (in place) and number every row; return the ids of
    ``extra`` in its own order (ids do not reveal which rows were planted)."""
    rows.extend(extra)
    rng.shuffle(rows)
    for i, row in enumerate(rows):
        row["id"] = f"{prefix}-{i:06d}"
    return [row["id"] for row in extra]


def _check(config: dict) -> None:
    if config["fact_docs"] < config["people"]:
        raise ValueError(
            f"world: fact_docs={config['fact_docs']} must be >= people={config['people']} "
            "(every person gets one full biography); raise fact_docs"
        )
    for key in ("arith_gen", "arith_mc", "facts_mc", "tom_mc"):
        if config["eval_size"][key] < 1:
            raise ValueError(f"world: eval_size.{key} must be >= 1")


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write the tiny world (see docs/stages/world.md); return its sizes."""
    _check(config)
    master = random.Random(config["seed"])
    rng = {name: random.Random(master.getrandbits(64)) for name in SECTIONS}
    sizes = config["eval_size"]

    people = make_people(rng["people"], config["people"])
    held_facts, train_facts = split_facts(rng["split"], people, sizes["facts_mc"])
    held_pairs, train_pairs = split_pairs(
        rng["split"], config["operand_max"], sizes["arith_gen"] + sizes["arith_mc"]
    )
    pools = Pools(
        people=people,
        facts=train_facts,
        problems=[p for pair in train_pairs for p in pair_problems(*pair)],
        names=[person[0].name for person in people],
    )
    sets = eval_sets(rng["eval"], sizes, held_pairs, held_facts)
    planted, planted_docs, planted_convs = plant(rng["plant"], sets, config["planted"])

    pretrain = pretrain_docs(rng["pretrain"], config, pools)
    sft = sft_conversations(rng["sft"], config["sft"], pools)
    preference = preference_pairs(rng["preference"], config["preference"], pools)
    rlvr = rlvr_prompts(rng["rlvr"], config["rlvr"], pools)
    # Instruction data for the pretraining mix (OLMo 2's mid-training mixes instruction data into
    # its final pretraining phase): same generator as SFT, its own RNG stream, disjoint rows.
    midtrain = sft_conversations(rng["midtrain"], config["midtrain"], pools)
    planted_pretrain = _mix_in(rng["mix"], pretrain, planted_docs, "pretrain")
    planted_sft = _mix_in(rng["mix"], sft, planted_convs, "sft")
    _mix_in(rng["mix"], preference, [], "preference")
    _mix_in(rng["mix"], rlvr, [], "rlvr")
    _mix_in(rng["midtrain"], midtrain, [], "midtrain")

    train = {
        "pretrain": pretrain, "midtrain": midtrain, "sft": sft, "preference": preference,
        "rlvr": rlvr,
    }  # fmt: skip
    for name, rows in train.items():
        write_jsonl(output_dir / "train" / f"{name}.jsonl", rows)
    for task in TASKS:
        write_jsonl(output_dir / "eval" / f"{task}.jsonl", sets[task])
    write_json(output_dir / "eval" / "index.json", eval_index())
    write_json(
        output_dir / "planted.json",
        {
            "ids": [inst["id"] for _, inst in planted],
            "documents": {"pretrain": planted_pretrain, "sft": planted_sft},
        },
    )
    metrics = {f"{name}_documents": len(rows) for name, rows in train.items()}
    metrics |= {f"eval_{task}_instances": len(sets[task]) for task in TASKS}
    metrics["pretrain_chars"] = sum(len(doc["text"]) for doc in pretrain)
    metrics["planted"] = len(planted)
    return metrics
