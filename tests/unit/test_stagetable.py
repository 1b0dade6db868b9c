"""The stage table: every stage declared once, and the plan wired by walking it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from reprolm import stagetable
from reprolm.containers import DOCKERFILE, IMAGE_FAMILIES, build_args
from reprolm.fingerprint import fingerprint
from reprolm.plan import Plan, load_plan
from reprolm.recipe import load_recipe
from reprolm.resources import FAMILIES, FAMILY_DEFAULTS
from reprolm.stagetable import CHECKPOINT_STAGES, STAGE_NAMES, STAGE_TABLE, TRAINING_STAGES

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
            if spec.stage is not None:
                assert STAGE_NAMES.index(spec.stage) < STAGE_NAMES.index(entry.name)
        assert stagetable.reproducibility(entry.name)["level"] == "bitwise"
    assert sorted(s for stages in FAMILIES.values() for s in stages) == sorted(STAGE_NAMES)
    assert sorted(s for stages in IMAGE_FAMILIES.values() for s in stages) == sorted(STAGE_NAMES)
    assert set(CHECKPOINT_STAGES) <= set(TRAINING_STAGES)


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
        if entry.name not in ("base_model", "source", "curate_shard", "tokenize_shard")
        for _ in (evaluated if entry.per_checkpoint else [None])
    ], (
        "table order, one evaluate job per checkpoint, base_model only with base_model.path, "
        "source jobs only with sources, curate_shard jobs only with curate.shards > 1"
    )
    inputs = stage_inputs(plan)
    assert inputs["curate/curate"] == {"world": "world/world", "evaldata": "evaldata/evaldata"}
    assert inputs["pretrain/pretrain"] == {"tokenize": "tokenize/tokenize"}
    previous = "pretrain"
    for stage in CHECKPOINT_STAGES[1:]:  # each post-training stage: previous checkpoint + data
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
    last = CHECKPOINT_STAGES[-1]
    assert release.inputs == {"model": f"{last}/{last}"} | {
        f"eval_{label}": f"evaluate/{label}" for label in evaluated
    }
    assert release.config["checkpoints"] == list(CHECKPOINT_STAGES)
    assert release.config["stages"] == list(STAGE_NAMES)
    for job in plan.jobs.values():  # identity = stage, config, input fingerprints
        upstream = {name: plan.jobs[key].fingerprint for name, key in job.inputs.items()}
        assert job.fingerprint == fingerprint(job.stage, job.config, upstream)


def test_base_model_stands_in_for_tokenize_and_pretrain(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # the plan checks it is an HF model directory
    plan = recipe("micro", base_model={"path": str(tmp_path)})
    assert not plan.by_stage("tokenize") and not plan.by_stage("pretrain")
    (base,) = plan.by_stage("base_model")
    first = CHECKPOINT_STAGES[1]
    assert plan.get(first, first).inputs == {"model": base.key, "data": "curate/curate"}
    assert plan.get("evaluate", "pretrain").inputs["model"] == base.key
    assert plan.release.inputs["model"] == f"{CHECKPOINT_STAGES[-1]}/{CHECKPOINT_STAGES[-1]}"


def test_without_specs_there_is_no_evaldata_job_nor_its_inputs():
    plan = recipe("micro", evaluate={"specs": []})
    assert not plan.by_stage("evaldata")
    assert plan.get("curate", "curate").inputs == {"world": "world/world"}
    for job in plan.by_stage("evaluate"):
        assert set(job.inputs) == {"model", "world"}
