"""The stage table: every stage declared once, and the plan wired by walking it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from reprolm import stagetable
from reprolm.containers import DOCKERFILE, IMAGE_FAMILIES, build_args
from reprolm.fingerprint import fingerprint
from reprolm.plan import Plan, load_plan
from reprolm.recipe import load_recipe
from reprolm.resources import FAMILIES, FAMILY_DEFAULTS
from reprolm.stagetable import (
    CHECKPOINT_STAGES,
    DEFAULT_CHECKPOINTS,
    OPT_IN_STAGES,
    STAGE_NAMES,
    STAGE_TABLE,
    TRAINING_STAGES,
)

ROOT = Path(__file__).resolve().parents[2]


def recipe(name: str, **blocks) -> Plan:
    value = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    return Plan(load_recipe({**value, **blocks}))


def stage_inputs(plan: Plan) -> dict[str, dict[str, str]]:
    """Job key -> {input name: producing job key}."""
    return {key: dict(job.inputs) for key, job in plan.jobs.items()}


def test_every_stage_has_code_a_schema_and_families():
    for entry in STAGE_TABLE:
        assert (ROOT / "stages" / entry.name / "__main__.py").is_file(), entry.name
        assert (ROOT / "config" / "schema" / f"{entry.name}.schema.yaml").is_file(), entry.name
        assert entry.resources in FAMILY_DEFAULTS
        assert (ROOT / "containers" / "requirements" / f"{entry.image}.txt").is_file(), entry
        for spec in entry.inputs:  # an input comes from a stage earlier in the table
            for name in (spec.stage, *spec.instead) if spec.stage is not None else ():
                assert STAGE_NAMES.index(name) < STAGE_NAMES.index(entry.name)
        assert stagetable.reproducibility(entry.name)["level"] == "bitwise"
    assert sorted(s for stages in FAMILIES.values() for s in stages) == sorted(STAGE_NAMES)
    assert sorted(s for stages in IMAGE_FAMILIES.values() for s in stages) == sorted(STAGE_NAMES)
    # Every checkpoint is trained but the soup (an average of trained ones).
    assert set(CHECKPOINT_STAGES) - set(TRAINING_STAGES) == {"soup"}


def test_image_labels_name_the_stages_of_their_family():
    text = (ROOT / DOCKERFILE).read_text(encoding="utf-8")
    assert 'io.reprolm.stages="${STAGES}"' in text and 'io.reprolm.family="${FAMILY}"' in text
    for family, stages in IMAGE_FAMILIES.items():
        assert build_args(family) == {"FAMILY": family, "STAGES": " ".join(stages)}


def test_job_code_does_not_read_the_stage_table():
    """Job code gets what it needs of the table in its config (release's checkpoint order)."""
    for path in [*(ROOT / "stages").rglob("*.py"), *(ROOT / "evals").rglob("*.py")]:
        assert not re.search(r"\bstagetable\b", path.read_text(encoding="utf-8")), path


def test_tiny_plan_is_the_table_walked():
    plan = load_plan(ROOT / "config" / "tiny.yaml")
    evaluated = plan.recipe["evaluate"]["checkpoints"]
    assert [job.stage for job in plan.jobs.values()] == [
        entry.name
        for entry in STAGE_TABLE
        if entry.name
        not in (
            *("base_model", "source", "curate_shard", "tokenize_shard", "responses", "score"),
            *OPT_IN_STAGES,
        )
        for _ in (evaluated if entry.per_checkpoint else [None])
    ], (
        "table order, one evaluate job per checkpoint, base_model only with base_model.path, "
        "source jobs only with sources, curate_shard jobs only with curate.shards > 1, "
        "responses and score jobs only with evaluate.external, midtrain and soup only with "
        "their blocks"
    )
    inputs = stage_inputs(plan)
    assert inputs["curate/curate"] == {"world": "world/world", "evaldata": "evaldata/evaldata"}
    assert inputs["pretrain/pretrain"] == {"tokenize": "tokenize/tokenize"}
    previous = "pretrain"
    for stage in DEFAULT_CHECKPOINTS[1:]:  # each post-training stage: previous checkpoint + data
        assert inputs[f"{stage}/{stage}"] == {
            "model": f"{previous}/{previous}",
            "data": "curate/curate",
        }
        previous = stage
    for label in evaluated:
        job = plan.get("evaluate", label)
        assert job.config["checkpoint"] == label and "checkpoints" not in job.config
        assert job.inputs == {
            "model": f"{label}/{label}",
            "world": "world/world",
            "evaldata": "evaldata/evaldata",
            "curate": "curate/curate",
        }
    release = plan.release
    last = DEFAULT_CHECKPOINTS[-1]
    assert release.inputs == {"model": f"{last}/{last}"} | {
        f"eval_{label}": f"evaluate/{label}" for label in evaluated
    }
    assert release.config["checkpoints"] == list(DEFAULT_CHECKPOINTS)  # opt-in ones if planned
    # The stages a release's lineage can hold: up to itself (the external ones come after).
    released = STAGE_NAMES[: STAGE_NAMES.index("release") + 1]
    assert release.config["stages"] == [s for s in released if s not in OPT_IN_STAGES]
    for job in plan.jobs.values():  # identity = stage, config, input fingerprints
        upstream = {name: plan.jobs[key].fingerprint for name, key in job.inputs.items()}
        assert job.fingerprint == fingerprint(job.stage, job.config, upstream)


def test_base_model_stands_in_for_tokenize_and_pretrain(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # the plan checks it is an HF model directory
    plan = recipe("micro", base_model={"path": str(tmp_path)})
    assert not plan.by_stage("tokenize") and not plan.by_stage("pretrain")
    (base,) = plan.by_stage("base_model")
    first = DEFAULT_CHECKPOINTS[1]
    assert plan.get(first, first).inputs == {"model": base.key, "data": "curate/curate"}
    assert plan.get("evaluate", "pretrain").inputs["model"] == base.key
    assert plan.release.inputs["model"] == f"{CHECKPOINT_STAGES[-1]}/{CHECKPOINT_STAGES[-1]}"


def test_without_specs_there_is_no_evaldata_job_nor_its_inputs():
    plan = recipe("micro", evaluate={"specs": []})
    assert not plan.by_stage("evaldata")
    assert plan.get("curate", "curate").inputs == {"world": "world/world"}
    for job in plan.by_stage("evaluate"):
        assert set(job.inputs) == {"model", "world"}


MIDTRAIN = {"mix": {"world": 0.5, "midtrain": 0.5}, "steps": 4}


def test_midtrain_and_soup_are_planned_with_their_blocks_and_sft_reads_the_soup():
    plan = recipe(
        "micro",
        midtrain=MIDTRAIN,
        soup={"checkpoints": ["midtrain", "pretrain"]},
        evaluate={"checkpoints": ["pretrain", "midtrain", "soup", "sft"]},
    )
    midtrain, soup = plan.get("midtrain", "midtrain"), plan.get("soup", "soup")
    assert midtrain.inputs == {
        "model": "pretrain/pretrain",
        "tokenize": "tokenize/tokenize",
        "curate": "curate/curate",
    }
    assert midtrain.config["seq_len"] == plan.get("pretrain", "pretrain").config["seq_len"]
    assert midtrain.config["mix"] == MIDTRAIN["mix"] and midtrain.config["steps"] == 4
    assert soup.inputs == {
        "model_midtrain": "midtrain/midtrain",
        "model_pretrain": "pretrain/pretrain",
    }
    assert soup.config["checkpoints"] == ["midtrain", "pretrain"]
    assert plan.get("sft", "sft").inputs["model"] == "soup/soup"
    assert plan.get("evaluate", "soup").inputs["model"] == "soup/soup"
    assert plan.get("evaluate", "midtrain").inputs["model"] == "midtrain/midtrain"
    order = [job.stage for job in plan.jobs.values()]
    assert (
        order.index("pretrain") < order.index("midtrain") < order.index("soup") < order.index("sft")
    )
    release = plan.release.config
    assert release["checkpoints"] == ["pretrain", "midtrain", "soup", "sft", "dpo", "rlvr"]
    assert {"midtrain", "soup"} <= set(release["stages"])
    # Without the soup, sft starts from midtrain; without either, from pretrain (as before).
    assert (
        recipe("micro", midtrain=MIDTRAIN).get("sft", "sft").inputs["model"] == "midtrain/midtrain"
    )
    plain = recipe("micro")
    assert not plain.by_stage("midtrain") and not plain.by_stage("soup")
    assert plain.get("sft", "sft").inputs["model"] == "pretrain/pretrain"


def test_a_recipe_without_the_blocks_plans_as_before():
    """midtrain and soup blocks are filled with their defaults, which plan nothing: the tiny
    plan's jobs, configs and fingerprints are those of the stages before them."""
    plan = load_plan(ROOT / "config" / "tiny.yaml")
    assert not plan.by_stage("midtrain") and not plan.by_stage("soup")
    assert not {"midtrain", "soup"} & set(plan.release.config["stages"])
    before = recipe("micro")
    after = recipe("micro", midtrain={"steps": 100}, soup={})  # the defaults: nothing planned
    assert {k: j.fingerprint for k, j in before.jobs.items()} == {
        k: j.fingerprint for k, j in after.jobs.items()
    }


SOUP = {"checkpoints": ["midtrain", "pretrain"]}
BAD_BLOCKS = [
    ({"soup": SOUP}, r"soup\.checkpoints\[0\]: midtrain is not planned"),
    ({"evaluate": {"checkpoints": ["soup"]}}, r"evaluate\.checkpoints names soup, which this"),
    ({"soup": {"checkpoints": ["pretrain"]}}, r"soup\.checkpoints"),
    ({"soup": {"checkpoints": ["pretrain", "sft"]}}, r"'sft' is not a checkpoint soup can"),
    ({"soup": {"checkpoints": ["pretrain@step2", "pretrain"]}}, r"does not save step 2"),
    ({"midtrain": MIDTRAIN, "soup": {**SOUP, "weights": [1, 2, 3]}}, r"soup\.weights: 3 weights"),
    ({"midtrain": {"mix": {"world": 0}}}, r"midtrain\.mix: the ratios sum to 0"),
    ({"midtrain": {"steps": 7}}, r"midtrain: the block sets steps but not midtrain\.mix"),
    ({"soup": {"weights": [1, 1]}}, r"soup: the block sets weights but not soup\.checkpoints"),
]


@pytest.mark.parametrize(("blocks", "message"), BAD_BLOCKS)
def test_bad_midtrain_and_soup_blocks_are_recipe_errors(blocks, message):
    from reprolm.recipe import RecipeError

    with pytest.raises(RecipeError, match=message):
        recipe("micro", **blocks)


def test_midtrain_with_a_base_model_is_refused(tmp_path):
    from reprolm.recipe import RecipeError

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RecipeError, match=r"base_model\.path replaces pretraining, and midtrain"):
        recipe("micro", base_model={"path": str(tmp_path)}, midtrain=MIDTRAIN)


def test_soup_averages_the_checkpoint_stages_before_it():
    """The soup schema's stage names are the checkpoint stages before soup (sft reads it)."""
    schema = yaml.safe_load((ROOT / "config" / "schema" / "soup.schema.yaml").read_text())
    names = schema["properties"]["checkpoints"]["items"]["anyOf"][0]["enum"]
    assert names == list(stagetable.SOUP_SOURCES) == ["pretrain", "midtrain"]
