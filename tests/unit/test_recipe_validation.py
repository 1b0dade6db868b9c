"""Every bad recipe of issue 13 is refused by `reprolm plan` with exit 2, the key path (or the
file) and a fix, never a traceback or a hang; the valid recipes it used to refuse now plan.

Each case is a mutation of config/micro.yaml (as text, so YAML-level faults stay faults) run
through the real command line entry point, in process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from reprolm.cli import main
from reprolm.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]
MICRO = ROOT / "config" / "micro.yaml"
GSM8K = ROOT / "data" / "eval" / "gsm8k" / "test_sample.jsonl"


def plan(recipe: Path, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `reprolm plan --recipe <recipe>`, with its wall time
    bounded (a hang is a failure)."""
    started = time.monotonic()
    with pytest.raises(SystemExit) as done:
        main(["plan", "--recipe", str(recipe), "--json"])
    assert time.monotonic() - started < 30, f"planning {recipe} took too long"
    out, err = capsys.readouterr()
    return done.value.code, out, err


def micro() -> dict:
    return yaml.safe_load(MICRO.read_text())


def with_values(**blocks) -> Callable[[Path], bytes]:
    """micro.yaml with blocks merged key by key (dotted keys: nested)."""

    def make(where: Path) -> bytes:
        recipe = micro()
        for dotted, value in blocks.items():
            *parents, last = dotted.split("__")
            target = recipe
            for key in parents:
                target = target.setdefault(key, {})
            target[last] = value(where) if callable(value) else value
        return yaml.safe_dump(recipe, sort_keys=False).encode()

    return make


def text(replace: str, by: str) -> Callable[[Path], bytes]:
    """micro.yaml's text with one line changed (or added)."""

    def make(where: Path) -> bytes:
        source = MICRO.read_text()
        assert replace in source
        return source.replace(replace, by, 1).encode()

    return make


def alias_bomb(where: Path) -> bytes:
    """Twenty levels of four aliases each under evaluate.tasks: 4**20 strings expanded."""
    levels = ["    - &a0 [arith_gen, arith_gen, arith_gen, arith_gen]"]
    levels += [f"    - &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 20)]
    bomb = "evaluate:\n  tasks:\n" + "\n".join(levels) + "\n"
    return MICRO.read_text().replace("evaluate:\n", bomb).encode()


def base_model_file(where: Path) -> str:
    (where / "weights.safetensors").write_bytes(b"x")
    return str(where / "weights.safetensors")


def base_model_without_config(where: Path) -> str:
    (where / "model").mkdir()
    return str(where / "model")


def sft_sources(**keys: dict) -> Callable[[Path], list]:
    """`sources.sft` entries named by ``keys`` (name -> extra keys), on one small file."""

    def make(where: Path) -> list:
        (where / "sft.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
        path = str(where / "sft.jsonl")
        return [{"name": n, "path": path, "format": "jsonl", **e} for n, e in keys.items()]

    return make


def copied_gsm8k(where: Path) -> str:
    shutil.copy(GSM8K, where / "gsm8k.jsonl")
    return str(where / "gsm8k.jsonl")


# (case id, how to make the file, what the message must contain). One per item of issue 13.
REFUSED = [
    # 8 tracebacks before
    ("non-utf8", lambda w: MICRO.read_bytes().replace(b"micro", b"micr\xff", 1), "not UTF-8"),
    ("utf16", lambda w: MICRO.read_text().encode("utf-16"), "UTF-16"),
    ("utf16-no-bom", lambda w: MICRO.read_text().encode("utf-16-le"), "UTF-16"),
    ("directory", None, "is a directory"),
    ("lr-nan", with_values(pretrain__learning_rate=float("nan")), "pretrain.learning_rate"),
    ("lr-inf", with_values(pretrain__learning_rate=float("inf")), "pretrain.learning_rate"),
    ("lr-minus-inf", text("  learning_rate: 0.001", "  learning_rate: -.inf"), "dpo.learning_rate"),
    ("date-key", text("  people: 12", "  2026-01-01: 12"), "world.2026-01-01"),
    ("bool-key", text("  people: 12", "  people: 12\n  yes: 1"), "world.yes: the key 'yes'"),
    # 1 hang before
    ("alias-bomb", alias_bomb, "values (YAML aliases)"),
    ("recursive-alias", text("evaluate:\n", "evaluate:\n  tasks: &t [*t]\n"), "evaluate.tasks"),
    # 16 nonsense values accepted before
    ("dup-block", lambda w: (MICRO.read_text() + "pretrain:\n  steps: 1\n").encode(), "pretrain"),
    ("dup-key", text("  num_heads: 2", "  num_heads: 2\n    num_heads: 4"),
     "pretrain.model.num_heads: duplicate key"),
    ("files-empty", with_values(evaldata__files={"gsm8k": ""}), "evaldata.files.gsm8k"),
    ("files-dot", with_values(evaldata__files={"gsm8k": "."}), "evaldata.files.gsm8k"),
    ("files-root", with_values(evaldata__files={"gsm8k": str(ROOT)}), "evaldata.files.gsm8k"),
    ("files-missing", with_values(evaldata__files={"gsm8k": "/nonexistent/test.jsonl"}),
     "evaldata.files.gsm8k: /nonexistent/test.jsonl is neither a file nor a directory"),
    ("heads-divide", with_values(pretrain__model={**micro()["pretrain"]["model"], "num_heads": 3}),
     "pretrain.model.num_heads=3 does not divide"),
    ("kv-exceeds", with_values(pretrain__model={**micro()["pretrain"]["model"], "num_kv_heads": 4}),
     "pretrain.model.num_kv_heads=4 exceeds"),
    ("kv-divide", with_values(pretrain__model={**micro()["pretrain"]["model"], "num_heads": 4,
                                               "num_kv_heads": 3}),
     "pretrain.model.num_kv_heads=3 does not divide"),
    ("odd-head-dim", with_values(pretrain__model={**micro()["pretrain"]["model"], "num_heads": 32}),
     "pretrain.model.hidden_size / num_heads"),
    ("seq-len", with_values(pretrain__seq_len=128), "pretrain.seq_len=128 exceeds"),
    ("generation-batch", with_values(resources__rlvr={"tasks": 2, "micro_batch_size": 1}),
     "rlvr.num_generations=4 does not divide"),
    ("batch-processes", with_values(resources__sft={"tasks": 3}), "sft.batch_size=4"),
    ("unknown-task", with_values(evaluate__tasks=["arith_gen", "trivia"]), "evaluate.tasks"),
    ("empty-tasks", with_values(evaluate__tasks=[]), "evaluate.tasks: []"),
    ("base-model-missing", with_values(base_model__path="/nonexistent/model"), "base_model.path"),
    ("base-model-file", with_values(base_model__path=base_model_file), "base_model.path"),
    ("base-model-no-config", with_values(base_model__path=base_model_without_config),
     "base_model.path"),
    ("base-model-empty", with_values(base_model__path=""), "base_model.path"),
    ("world-sft-0", with_values(world__sft=0), "world.sft=0"),
    ("world-rlvr-0", with_values(world__rlvr=0), "world.rlvr=0"),
    ("fact-docs", with_values(world__fact_docs=5), "world.fact_docs=5"),
    ("seed-2-40", with_values(seed=2**40), "seed"),
    ("stage-seed-2-40", with_values(sft__seed=2**40), "sft.seed"),
    ("unknown-spec-data", with_values(evaluate__spec_data={"gsm8k:cot::nope": "gsm8k"}),
     "evaluate.spec_data.gsm8k:cot::nope"),
    ("moe-keys-dense", with_values(pretrain__model={**micro()["pretrain"]["model"],
                                                    "num_experts": 4}),
     "pretrain.model.num_experts"),
    ("wsd-no-decay", with_values(pretrain__lr_scheduler="wsd"),
     "pretrain.lr_scheduler: wsd needs pretrain.decay_fraction"),
    ("wsd-too-long", with_values(pretrain__lr_scheduler="wsd", pretrain__decay_fraction=0.95),
     "pretrain.warmup_steps=2 + decay steps"),
    ("schedule-wsd-no-decay", with_values(pretrain__schedule="wsd"),
     "pretrain.lr_scheduler: wsd needs pretrain.decay_fraction"),
    ("schedule-typo", with_values(pretrain__schedule="wds"), "pretrain.schedule"),
    ("decay-without-wsd", with_values(pretrain__min_lr_ratio=0.1),
     "pretrain.min_lr_ratio: only for pretrain.lr_scheduler: wsd"),
    ("router-z-dense", with_values(pretrain__router_z_loss_coef=0.001),
     "pretrain.router_z_loss_coef: only for MoE models"),
    ("ratio-above-1", with_values(sources__sft=sft_sources(tulu={"ratio": 1.5})),
     "sources.sft[0].ratio: 1.5 is greater than the maximum of 1; give a value at most 1"),
    ("ratio-0", with_values(sources__sft=sft_sources(tulu={"ratio": 0})),
     "sources.sft[0].ratio: 0 is less than or equal to the minimum of 0; give a value above 0"),
    ("weight-and-ratio", with_values(sources__sft=sft_sources(tulu={"weight": 2.0},
                                                               flan={"ratio": 0.5})),
     "sources.sft: sources.sft[0] (tulu) name a weight and sources.sft[1] (flan) a ratio; a "
     "kind is mixed one way: choose weight"),
    # the file itself
    ("missing-file", None, "file not found"),
    ("not-a-mapping", lambda w: b"- a\n- b\n", "a recipe is a mapping"),
    ("two-documents", lambda w: MICRO.read_bytes() + b"---\nname: x\n", "not valid YAML"),
    ("deep-nesting", lambda w: MICRO.read_bytes() + b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n",
     "nested"),
    ("python-tag", lambda w: MICRO.read_bytes() + b"x: !!python/object/apply:os.system [ls]\n",
     "not valid YAML"),
    ("binary-value", with_values(release__name=b"\x00\x01"), "release.name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_a_bad_recipe_is_refused_naming_its_key_and_a_fix(make, expected, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    if make is None and expected == "is a directory":
        recipe.mkdir()
    elif make is not None:
        recipe.write_bytes(make(tmp_path))
    code, out, err = plan(recipe, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in err and out == ""
    assert expected in err, err
    assert str(recipe) in err  # the user's file named


@pytest.mark.parametrize(
    "make",
    [
        with_values(pretrain__learning_rate="1e-3"),  # written unquoted below
        with_values(evaldata__files__gsm8k=copied_gsm8k),  # the docs' example
        with_values(evaluate__spec_data={"gsm8k:cot::tulu": "gsm8k"}),  # one entry added
        with_values(
            pretrain__lr_scheduler="wsd", pretrain__decay_fraction=0.2, pretrain__z_loss_coef=1e-5
        ),
        with_values(pretrain__schedule="wsd", pretrain__decay_fraction=0.2),
        with_values(sources__sft=sft_sources(tulu={"ratio": 1.0}, flan={"ratio": 0.5}, own={})),
    ],
    ids=[
        "lr-1e-3",
        "one-evaldata-file",
        "one-spec-data-entry",
        "wsd-z-loss",
        "schedule-wsd",
        "sft-ratios",
    ],
)
def test_valid_recipes_once_refused_now_plan(make, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(make(tmp_path).replace(b"'1e-3'", b"1e-3"))
    code, out, err = plan(recipe, capsys)
    assert code == 0, err
    jobs = {f"{job['stage']}/{job['label']}": job for job in json.loads(out)}
    if b"learning_rate: 1e-3" in recipe.read_bytes():
        assert jobs["pretrain/pretrain"]["config"]["learning_rate"] == 0.001
    if "source/sft.flan" in jobs:  # a ratio reaches its source job; no ratio adds no key
        assert jobs["source/sft.flan"]["config"]["ratio"] == 0.5
        assert "ratio" not in jobs["source/sft.own"]["config"]
    evaldata = jobs["evaldata/evaldata"]["config"]
    # The defaults not overridden are kept: the three default specs still find their data.
    assert set(evaldata["files"]) == {"arc_challenge", "gsm8k", "ifeval"}
    assert evaldata["specs"]["arc_easy:rc::olmes"] == "arc_challenge"


def test_numbers_are_read_as_users_write_them(tmp_path):
    from reprolm.recipeyaml import load_yaml_file

    path = tmp_path / "numbers.yaml"
    path.write_text("a: 1e-3\nb: 3e4\nc: -2.5E+2\nd: .5e1\ne: 1e3x\nf: '1e-3'\ng: 12\n")
    assert load_yaml_file(path) == {
        "a": 0.001, "b": 30000.0, "c": -250.0, "d": 5.0, "e": "1e3x", "f": "1e-3", "g": 12,
    }  # fmt: skip


def test_a_null_entry_drops_a_default_and_the_rest_stay():
    recipe = micro()
    recipe["evaldata"] = {"files": {"hellaswag": None, "gsm8k": str(GSM8K)}}
    recipe["evaluate"]["spec_data"] = {"arc_easy:mc::olmes": None}
    loaded = load_recipe(recipe)
    assert "hellaswag" not in loaded["evaldata"]["files"]
    assert loaded["evaldata"]["files"]["gsm8k"] == str(GSM8K)
    assert loaded["evaldata"]["files"]["ifeval"] == "data/eval/ifeval/input_sample.jsonl"
    assert loaded["evaluate"]["spec_data"] == {"arc_easy:rc::olmes": "arc_challenge"}


@pytest.mark.parametrize("name", ["tiny", "micro"])
def test_the_shipped_recipes_plan(name, capsys):
    code, out, err = plan(ROOT / "config" / f"{name}.yaml", capsys)
    assert code == 0, err
    assert json.loads(out)


def test_every_shipped_recipe_passes_the_loader_and_the_cross_field_checks(tmp_path):
    """The GPU recipes name data only clusters have: they must fail (if at all) on that data,
    never on the loader, the schema or the cross-field checks."""
    from reprolm.recipe import recipe_schema, validate
    from reprolm.recipecheck import CHECKS
    from reprolm.recipeyaml import load_yaml_file

    for path in sorted((ROOT / "config").glob("*.yaml")):
        recipe = validate(load_yaml_file(path), recipe_schema(), str(path), merge_maps=True)
        if recipe["base_model"].get("path"):  # a cluster path: stand in a model directory
            (tmp_path / "base").mkdir(exist_ok=True)
            (tmp_path / "base" / "config.json").write_text("{}")
            recipe["base_model"]["path"] = str(tmp_path / "base")
        problems = [p for check in CHECKS for p in check(recipe)]
        assert problems == [], f"{path.name}: {problems}"


@pytest.mark.slow
def test_snakemake_plans_through_the_same_checked_loader(tmp_path):
    """`snakemake -n --configfile` reads the recipe files through reprolm's loader: a duplicate
    key Snakemake's own YAML loader would accept stops the workflow, naming both lines, an alias
    bomb is refused in seconds (no hang), and `1e-3` plans."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text(MICRO.read_text().replace("seed: 1234", "seed: 1234\nseed: 99"))
    exponent = tmp_path / "exp.yaml"
    exponent.write_text(MICRO.read_text().replace("learning_rate: 0.001", "learning_rate: 1e-3"))
    bomb = tmp_path / "bomb.yaml"
    bomb.write_bytes(alias_bomb(tmp_path))
    runs = {}
    for recipe in (duplicate, exponent, bomb):
        runs[recipe.name] = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(recipe),
             "-d", str(tmp_path / "work"), "-s", str(ROOT / "Snakefile")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    refused = runs["dup.yaml"]
    assert refused.returncode != 0
    assert f"{duplicate}:5: seed: duplicate key (first at line 4)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert runs["bomb.yaml"].returncode != 0
    assert f"{bomb}:64: evaluate.tasks" in runs["bomb.yaml"].stderr
    assert "expands to more than 100000 values" in runs["bomb.yaml"].stderr
    planned = runs["exp.yaml"]
    assert planned.returncode == 0, planned.stderr[-3000:]
