"""Fan-out in the plan: one source job per `sources` entry, curate shards in batches."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from reprolm.fanout import DEFAULT_SHARD_JOBS, GATHER_ONLY, MAX_SHARD_JOBS
from reprolm.plan import Plan
from reprolm.recipe import RecipeError, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def micro(**blocks) -> Plan:
    value = yaml.safe_load((ROOT / "config" / "micro.yaml").read_text())
    return Plan(load_recipe({**value, **blocks}))


def test_one_shard_is_curated_by_the_gather_itself() -> None:
    plan = micro()
    assert plan.by_stage("curate_shard") == [] and plan.by_stage("source") == []
    assert set(plan.get("curate", "curate").inputs) == {"world", "evaldata"}


def test_shards_fan_out_in_batches_and_the_gather_takes_them_in_order() -> None:
    plan = micro(curate={"shards": 10, "shards_per_job": 3})
    jobs = plan.by_stage("curate_shard")
    assert [job.label for job in jobs] == [
        "00000_00003",
        "00003_00006",
        "00006_00009",
        "00009_00010",
    ]
    assert [(job.config["first"], job.config["last"]) for job in jobs] == [
        (0, 3), (3, 6), (6, 9), (9, 10),
    ]  # fmt: skip
    assert all(job.config["shards"] == 10 for job in jobs)
    assert not any(key in job.config for job in jobs for key in GATHER_ONLY)
    gather = plan.get("curate", "curate")
    shard_inputs = [name for name in gather.inputs if name.startswith("shard_")]
    assert shard_inputs == [f"shard_{job.label}" for job in jobs]
    assert plan.get("tokenize", "tokenize").inputs == {"curate": "curate/curate"}


def test_a_gather_only_key_reruns_the_gather_not_the_shards() -> None:
    base = micro(curate={"shards": 4})
    looser = micro(curate={"shards": 4, "reject_rate_max": 0.2})
    fingerprints = [
        {j.key: j.fingerprint for j in p.by_stage("curate_shard")} for p in (base, looser)
    ]
    assert fingerprints[0] == fingerprints[1]
    assert base.get("curate", "curate").fingerprint != looser.get("curate", "curate").fingerprint
    stricter_filters = micro(curate={"shards": 4, "filters": {"gopher_repetition": {}}})
    assert stricter_filters.by_stage("curate_shard")[0].fingerprint != (
        base.by_stage("curate_shard")[0].fingerprint
    )


@pytest.mark.parametrize("shards", [100, 1000, 10000])
def test_default_batches_keep_the_job_count_small(shards: int) -> None:
    jobs = micro(curate={"shards": shards}).by_stage("curate_shard")
    assert len(jobs) <= DEFAULT_SHARD_JOBS
    assert len(jobs) == math.ceil(shards / math.ceil(shards / DEFAULT_SHARD_JOBS))
    assert jobs[-1].config["last"] == shards


def test_too_many_shard_jobs_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"curate.shards=5000 .* set shards_per_job to at least 5"):
        micro(curate={"shards": 5000, "shards_per_job": 1})
    assert len(micro(curate={"shards": 5000, "shards_per_job": 5}).by_stage("curate_shard")) == (
        MAX_SHARD_JOBS
    )


def test_sources_become_source_jobs_wired_into_the_curate_jobs(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "sft.jsonl").write_text('{"messages": []}\n')
    sources = {
        "pretrain": [{"name": "web", "path": str(tmp_path / "web" / "*.jsonl"), "format": "jsonl"}],
        "sft": [{"name": "tulu", "path": str(tmp_path / "sft.jsonl"), "format": "jsonl"}],
    }
    plan = micro(sources=sources, curate={"shards": 2})
    assert [job.label for job in plan.by_stage("source")] == ["pretrain.web", "sft.tulu"]
    web = plan.get("source", "pretrain.web")
    assert web.config["kind"] == "pretrain" and web.config["path"] == sources["pretrain"][0]["path"]
    for job in [*plan.by_stage("curate_shard"), plan.get("curate", "curate")]:
        assert {"source_pretrain.web", "source_sft.tulu"} <= set(job.inputs)
    # The world still runs: its eval sets are decontaminated against and evaluated.
    assert plan.by_stage("world")


def test_weights_are_given_for_every_source_of_a_kind_or_none(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    entries = [
        {"name": "web", "path": str(tmp_path / "a.jsonl"), "format": "jsonl", "weight": 0.7},
        {"name": "code", "path": str(tmp_path / "a.jsonl"), "format": "jsonl"},
    ]
    with pytest.raises(ValueError, match=r"sources.pretrain: web name a weight but code do not"):
        micro(sources={"pretrain": entries})


def test_an_unregistered_rlvr_verifier_fails_the_plan(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text('{"messages": [], "ground_truth": "1"}\n')
    entry = {"name": "math", "path": str(tmp_path / "r.jsonl"), "format": "jsonl"}
    with pytest.raises(ValueError, match=r"sources.rlvr\[0\] \(math\): verifier 'nope' is not"):
        micro(sources={"rlvr": [entry | {"verifier": "nope"}]})
    assert micro(sources={"rlvr": [entry | {"verifier": "numeric_answer"}]}).by_stage("source")


def test_curate_imports_no_evaluation_code() -> None:
    """Editing a metric (evals/gsm8k.py, the verifiers) never reruns curation and all after it."""
    from reprolm.codedigest import stage_source_files

    for stage in ("source", "curate_shard", "curate", "tokenize"):
        files = {p.relative_to(ROOT).as_posix() for p in stage_source_files(stage)}
        assert not files & {"evals/gsm8k.py", "evals/verifiers.py", "evals/ifeval/__init__.py"}


def given_tokenizer(tmp_path: Path) -> dict:
    """A directory the plan can pin (tokenizer.json is all pin_tokenizer hashes here)."""
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text("{}")
    return {"path": str(tmp_path / "tok")}


def test_tokenize_shards_fan_out_in_batches_with_the_pinned_tokenizer(tmp_path: Path) -> None:
    tokenizer = given_tokenizer(tmp_path)
    plan = micro(tokenize={"tokenizer": tokenizer, "shards": 5, "shards_per_job": 2})
    jobs = plan.by_stage("tokenize_shard")
    assert [job.label for job in jobs] == ["00000_00002", "00002_00004", "00004_00005"]
    assert all(job.inputs == {"curate": "curate/curate"} for job in jobs)
    gather = plan.get("tokenize", "tokenize")
    assert gather.inputs == {"curate": "curate/curate"} | {
        f"shard_{job.label}": job.key for job in jobs
    }
    digest = gather.config["tokenizer"]["digest"]
    for job in jobs:  # the gather's pin, the shard count; none of the gather-only keys
        assert job.config["tokenizer"]["digest"] == digest and job.config["shards"] == 5
        assert {"seq_len", "epochs", "shard_tokens", "mask_checks", "vocab_size"}.isdisjoint(
            job.config
        )
    longer = micro(
        tokenize={"tokenizer": tokenizer, "shards": 5, "shards_per_job": 2},
        pretrain={"seq_len": 32},
    )
    assert [j.fingerprint for j in longer.by_stage("tokenize_shard")] == [
        j.fingerprint for j in jobs
    ]  # windows are the gather's: a new seq_len reruns only it
    assert longer.get("tokenize", "tokenize").fingerprint != gather.fingerprint


def test_tokenize_default_batches_and_cap(tmp_path: Path) -> None:
    tokenizer = given_tokenizer(tmp_path)
    jobs = micro(tokenize={"tokenizer": tokenizer, "shards": 1000}).by_stage("tokenize_shard")
    assert len(jobs) == math.ceil(1000 / math.ceil(1000 / DEFAULT_SHARD_JOBS))
    with pytest.raises(ValueError, match=r"tokenize.shards=5000 .* 5000 tokenize_shard jobs"):
        micro(tokenize={"tokenizer": tokenizer, "shards": 5000, "shards_per_job": 1})


def test_tokenize_shards_without_a_given_tokenizer_is_a_recipe_error() -> None:
    with pytest.raises(RecipeError, match=r"tokenize.shards=3 needs tokenize.tokenizer"):
        micro(tokenize={"shards": 3})


def test_one_tokenize_shard_or_a_base_model_plans_no_tokenize_shard_job(tmp_path: Path) -> None:
    tokenizer = given_tokenizer(tmp_path)
    one = micro(tokenize={"tokenizer": tokenizer})
    assert one.by_stage("tokenize_shard") == []
    assert one.get("tokenize", "tokenize").inputs == {"curate": "curate/curate"}
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")  # the plan checks it is an HF model directory
    based = micro(tokenize={"shards": 3}, base_model={"path": str(model)})
    assert based.by_stage("tokenize_shard") == [] and based.by_stage("tokenize") == []
