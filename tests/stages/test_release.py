"""release: HF model that loads offline, model card front matter, eval table, lineage walk.

Upstream artifacts are hand-built: a random tiny OLMo 2 (from the real tokenizer) as the final
checkpoint, evaluate results files, and small fake ``provenance.json`` manifests of the runner's
shape (``stage``, ``fingerprint``, ``inputs: {name: {path, fingerprint, digest}}``).
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import pytest
import yaml

from reprolm.recipe import validate_stage_config
from reprolm.stagetable import DEFAULT_CHECKPOINTS, STAGE_NAMES
from stages.common.job import JobContext, as_inputs
from stages.release import lineage
from stages.release.card import format_eval_table
from stages.release.stage import run
from tests.stages.micro import save_random_tiny_model

CHECKPOINTS = DEFAULT_CHECKPOINTS  # a recipe without the opt-in midtrain and soup blocks
# What the plan sets in the release config: the checkpoint and stage order.
PLAN_KEYS = {"checkpoints": list(DEFAULT_CHECKPOINTS), "stages": list(STAGE_NAMES)}
SUMMARY = "Pretrained on a tiny world, then SFT, DPO and RLVR."


def tiny_model_dir(tokenize_artifact: pathlib.Path, dest: pathlib.Path) -> None:
    """A random tiny OLMo 2 with the real tokenizer, saved as a checkpoint's ``model/``."""
    save_random_tiny_model(tokenize_artifact, dest)


def fp(name: str) -> str:
    """A fake fingerprint in the manifest format (12 hex digits), named for the test."""
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def dg(name: str) -> str:
    """A fake payload digest in the manifest format (64 hex digits)."""
    return hashlib.sha256(f"digest-{name}".encode()).hexdigest()


def write_manifest(
    artifact: str, stage: str, fingerprint: str, inputs: dict[str, tuple], run: int = 0
) -> None:
    """A fake runner manifest; ``inputs`` maps a name to (artifact path, stage, fingerprint).

    ``run`` varies the fields that record one particular run (time, host, commit).
    """
    path = pathlib.Path(artifact)
    path.mkdir(parents=True, exist_ok=True)
    manifest = {
        "stage": stage,
        "label": stage,
        "fingerprint": fp(fingerprint),
        "digest": dg(fingerprint),
        "files": {},  # the platform's manifest reader (the lineage walk) requires the field
        "inputs": {
            name: {"path": p, "stage": s, "fingerprint": fp(f), "digest": dg(f)}
            for name, (p, s, f) in inputs.items()
        },
        "code": {"code_digest": f"code-{stage}", "commit": f"commit{run}", "dirty": False},
        "environment": {"host": f"host{run}", "python": "3.11.7", "packages": {"torch": "2.13"}},
        "execution": {"started": f"2026-01-0{run + 1}T00:00:00+00:00", "argv": [artifact]},
    }
    (path / "provenance.json").write_text(json.dumps(manifest, sort_keys=True), encoding="utf-8")


def fake_pipeline(root: pathlib.Path, model_files: pathlib.Path, run: int = 0) -> dict:
    """Fake artifacts under ``root`` (the working directory, as under Snakemake)."""
    import shutil

    a = "artifacts"
    write_manifest(f"{a}/world/w", "world", "fw", {}, run)
    world = (f"{a}/world/w", "world", "fw")
    write_manifest(f"{a}/curate/c", "curate", "fc", {"world": world}, run)
    write_manifest(
        f"{a}/tokenize/t", "tokenize", "ft", {"curate": (f"{a}/curate/c", "curate", "fc")}, run
    )
    previous = (f"{a}/tokenize/t", "tokenize", "ft")
    for stage in CHECKPOINTS:
        name = "tokenize" if stage == "pretrain" else "model"
        inputs = {name: previous}
        if stage != "pretrain":  # every post-training stage reads curate: a shared ancestor
            inputs["data"] = (f"{a}/curate/c", "curate", "fc")
        write_manifest(f"{a}/{stage}/{stage}", stage, f"f{stage}", inputs, run)
        previous = (f"{a}/{stage}/{stage}", stage, f"f{stage}")
    if not (root / a / "rlvr" / "rlvr" / "model").exists():
        shutil.copytree(model_files, root / a / "rlvr" / "rlvr" / "model")
    inputs = {"model": pathlib.Path(f"{a}/rlvr/rlvr")}
    for i, stage in enumerate(CHECKPOINTS):
        ev = f"{a}/evaluate/{stage}"
        model = (f"{a}/{stage}/{stage}", stage, f"f{stage}")
        write_manifest(ev, "evaluate", f"fe{stage}", {"model": model, "world": world}, run)
        doc = results_doc(stage, 0.2 * (i + 1))
        (pathlib.Path(ev) / "results.json").write_text(json.dumps(doc), encoding="utf-8")
        inputs[f"eval_{stage}"] = pathlib.Path(ev)
    return inputs


def results_doc(checkpoint: str, score: float) -> dict:
    """An evaluate ``results.json`` (shape written by stages.evaluate)."""
    return {
        "checkpoint": checkpoint,
        "chat_template": checkpoint != "pretrain",
        "instances": {"arith_gen": 4, "facts_mc": 4},
        "primary_metrics": {"arith_gen": "exact_match", "facts_mc": "acc"},
        "task_types": {"arith_gen": "generate", "facts_mc": "multiple_choice"},
        "tasks": {
            "arith_gen": {"exact_match": score / 2},
            "facts_mc": {"acc": score, "acc_norm": score / 4},
        },
    }


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, tokenize_artifact) -> pathlib.Path:
    dest = tmp_path_factory.mktemp("model") / "model"
    tiny_model_dir(tokenize_artifact, dest)
    return dest


@pytest.fixture
def pipeline(tmp_path, monkeypatch, model_files) -> dict[str, pathlib.Path]:
    monkeypatch.chdir(tmp_path)
    return fake_pipeline(tmp_path, model_files)


def release(out: pathlib.Path, inputs: dict, **config) -> dict:
    config = validate_stage_config(
        "release", {"seed": 7, "threads": 1, "recipe_summary": SUMMARY, **PLAN_KEYS, **config}
    )
    out.mkdir(parents=True)
    return run(config, as_inputs(inputs), out, JobContext())


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def test_released_model_loads_offline_and_generates(tmp_path, pipeline, model_files, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    release(tmp_path / "out", pipeline)
    model_dir = tmp_path / "out" / "model"
    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json"):
        assert (model_dir / name).read_bytes() == (model_files / name).read_bytes(), name
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    # The model card's usage snippet, as written.
    messages = [{"role": "user", "content": "What is 12 plus 7?"}]
    inputs = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    torch.manual_seed(0)
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]


def test_model_card_front_matter(tmp_path, pipeline):
    metrics = release(tmp_path / "out", pipeline, name="toy-model")
    readme = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    meta = front_matter(readme)
    assert meta["license"] == "apache-2.0"
    assert meta["library_name"] == "transformers"
    assert meta["base_model"] == f"dpo-{fp('fdpo')}"  # the released checkpoint's parent
    assert meta["datasets"] == [f"world-{fp('fw')}", f"curate-{fp('fc')}"]
    assert {"reprolm", "sft", "dpo", "rlvr"} <= set(meta["tags"])
    (entry,) = meta["model-index"]
    assert entry["name"] == "toy-model"
    got = {
        (r["task"]["name"], m["type"]): m["value"] for r in entry["results"] for m in r["metrics"]
    }
    rlvr = results_doc("rlvr", 0.8)["tasks"]  # model-index = the released (rlvr) checkpoint
    assert got == {(t, m): v for t, ms in rlvr.items() for m, v in ms.items()}
    assert metrics["facts_mc/acc"] == pytest.approx(0.8) and metrics["lineage_manifests"] == 11
    body = readme.split("---\n", 2)[2]
    assert SUMMARY in body and "| task | metric |" in body and "from_pretrained" in body


def test_eval_table_rows_in_pipeline_order(tmp_path, pipeline):
    release(tmp_path / "out", pipeline)
    table = (tmp_path / "out" / "eval_table.md").read_text(encoding="utf-8")
    lines = table.splitlines()
    assert lines[0] == "| checkpoint | arith_gen (exact_match) | facts_mc (acc) |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == list(CHECKPOINTS)
    assert lines[2] == "| pretrain | 0.100 | 0.200 |"
    # Reusable on its own: any order in, pipeline order out; a task missing from a row is shown.
    shuffled = {"rlvr": results_doc("rlvr", 0.5), "pretrain": results_doc("pretrain", 0.1)}
    del shuffled["pretrain"]["tasks"]["arith_gen"]
    rows = format_eval_table(shuffled, CHECKPOINTS).splitlines()[2:]
    assert rows == ["| pretrain | – | 0.100 |", "| rlvr | 0.250 | 0.500 |"]


def test_lineage_collects_every_manifest_once(tmp_path, pipeline):
    release(tmp_path / "out", pipeline)
    written = sorted(p.name for p in (tmp_path / "out" / "lineage").iterdir())
    expected = [f"curate-{fp('fc')}.json", f"tokenize-{fp('ft')}.json", f"world-{fp('fw')}.json"]
    expected += [f"{s}-{fp(f'f{s}')}.json" for s in CHECKPOINTS]
    expected += [f"evaluate-{fp(f'fe{s}')}.json" for s in CHECKPOINTS]
    assert written == sorted(expected)  # curate and world are reached many times, kept once
    source = json.loads(pathlib.Path("artifacts/sft/sft/provenance.json").read_bytes())
    copy = json.loads((tmp_path / "out" / "lineage" / f"sft-{fp('fsft')}.json").read_bytes())
    # Identity and content kept; the record of one run (time, host, commit, paths) dropped.
    assert copy["fingerprint"] == fp("fsft") and copy["digest"] == source["digest"]
    assert copy["inputs"] == {
        "data": {"stage": "curate", "fingerprint": fp("fc"), "digest": dg("fc")},
        "model": {"stage": "pretrain", "fingerprint": fp("fpretrain"), "digest": dg("fpretrain")},
    }
    assert copy["code"] == {"code_digest": "code-sft"}
    assert copy["environment"] == {"python": "3.11.7", "packages": {"torch": "2.13"}}
    assert "execution" not in copy


def test_broken_lineage_is_named(tmp_path, pipeline):
    bad = "artifacts/sft/sft/provenance.json"
    manifest = json.loads(pathlib.Path(bad).read_text(encoding="utf-8"))
    manifest["inputs"]["model"]["path"] = "artifacts/pretrain/gone"
    pathlib.Path(bad).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(lineage.LineageError, match=r"sft/provenance.json: input 'model'.*gone"):
        release(tmp_path / "a", pipeline)
    manifest["inputs"]["model"].update(path="artifacts/pretrain/pretrain", fingerprint=fp("stale"))
    pathlib.Path(bad).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(lineage.LineageError, match=f"expects fingerprint {fp('stale')}"):
        release(tmp_path / "b", pipeline)


def test_bad_inputs_are_named(tmp_path, pipeline):
    with pytest.raises(ValueError, match="eval_<checkpoint>"):
        release(tmp_path / "a", {"model": pipeline["model"]})
    with pytest.raises(ValueError, match="eval_<checkpoint>"):
        release(tmp_path / "b", {**pipeline, "evaluation": pipeline["eval_sft"]})


def test_bitwise_deterministic(tmp_path, pipeline, model_files):
    """Two releases, the second over a rebuilt pipeline (same artifacts, another run record)."""
    release(tmp_path / "one", pipeline)
    pipeline = fake_pipeline(tmp_path, model_files, run=1)
    release(tmp_path / "two", pipeline)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*"))
    for rel in files:
        if (tmp_path / "one" / rel).is_file():
            assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    text = (tmp_path / "one" / "README.md").read_text(encoding="utf-8")
    assert str(tmp_path) not in text


ARC = "arc_easy:rc::olmes"


def add_spec_result(eval_dir: pathlib.Path, primary: float, spec_hash: str) -> None:
    """A spec result inside an evaluate artifact, as the evaluate stage writes it."""
    from evals.results import write_result

    result = {
        "task_id": ARC,
        "kind": "multiple_choice",
        "spec_hash": spec_hash,
        "spec": {},
        "metrics": {"acc_per_char": primary},
        "primary_metric": "acc_per_char",
        "primary": primary,
        "instances": 10,
        "decontamination": {"contamination": 0.1, "flagged": 1, "instances": 10},
    }
    write_result(eval_dir / "specs" / ARC, result, [{"doc_id": 0}])


def test_model_card_comparison_table(tmp_path, pipeline, capsys):
    """Tasks x checkpoints in the card (spec results included, a changed spec withheld), CSV +
    plot in the payload; then ``reprolm eval compare`` across two releases ("recipes")."""
    from evals.compare import CSV_FIELDS
    from reprolm.cli import main

    for stage, score in (("pretrain", 0.25), ("sft", 0.5), ("rlvr", 0.75)):
        add_spec_result(pipeline[f"eval_{stage}"], score, "a" * 64)
    add_spec_result(pipeline["eval_dpo"], 0.625, "b" * 64)  # evaluated under a changed spec
    metrics = release(tmp_path / "a", pipeline, name="recipe-a")
    assert metrics[f"{ARC}/acc_per_char"] == 0.75  # the released (rlvr) checkpoint's spec result
    readme = (tmp_path / "a" / "README.md").read_text(encoding="utf-8")
    header = "| task | metric | spec | n | decontamination | pretrain | sft | dpo | rlvr |"
    assert header in readme
    assert (
        f"| {ARC} | acc_per_char | `aaaaaaaa` | 10 | 10.0% (1/10) | 0.250 | 0.500 | ≠ spec | "
        "0.750 |" in readme
    )
    assert "| facts_mc | acc | – | 4 | – | 0.200 | 0.400 | 0.600 | 0.800 |" in readme
    assert "* dpo, arc_easy:rc::olmes (acc_per_char): 0.625 under spec `bbbbbbbb`" in readme
    files = ["comparison.csv", "comparison.json", "comparison.png"]
    assert sorted(p.name for p in (tmp_path / "a" / "comparison").iterdir()) == files
    for name in files:
        assert f"`comparison/{name}`" in readme
    assert "![scores per task and checkpoint](comparison/comparison.png)" in readme
    csv_lines = (tmp_path / "a" / "comparison" / "comparison.csv").read_text().splitlines()
    assert csv_lines[0] == ",".join(CSV_FIELDS) and len(csv_lines) == 1 + 3 * 4

    # A second "recipe": another release name and another sft score on facts_mc.
    doc = json.loads((pipeline["eval_sft"] / "results.json").read_text(encoding="utf-8"))
    doc["tasks"]["facts_mc"]["acc"] = 0.125
    (pipeline["eval_sft"] / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    release(tmp_path / "b", pipeline, name="recipe-b")
    csv_path, plot = tmp_path / "cmp.csv", tmp_path / "cmp.png"
    argv = ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")]
    with pytest.raises(SystemExit) as done:
        main([*argv, "--csv", str(csv_path), "--plot", str(plot)])
    assert done.value.code == 0
    out = capsys.readouterr().out
    columns = [f"recipe-{r}/{c}" for r in "ab" for c in CHECKPOINTS]
    assert out.splitlines()[0] == (
        "| task | metric | spec | n | decontamination | " + " | ".join(columns) + " |"
    )
    assert "| facts_mc | acc | – | 4 | – | 0.200 | 0.400 | 0.600 | 0.800 | 0.200 | 0.125 |" in out
    assert "facts_mc,acc,,recipe-b/sft,ok,0.125,,4," in csv_path.read_text()
    assert plot.read_bytes().startswith(b"\x89PNG")
