"""evaluate: the world's eval sets as task specs (lm-eval), results and predictions.

The checkpoint is a randomly initialised tiny OLMo 2 built from the real tokenizer: assertions
are about the pipeline (tasks, prompts, scoring code, determinism), never about the scores.
"""

from __future__ import annotations

import json
import pathlib
import random
import shutil

import pytest

from evals import results as eval_results
from evals import verifiers, world
from reprolm.recipe import validate_stage_config
from stages.common.job import JobContext, as_inputs
from stages.evaluate.stage import run
from tests.stages.micro import save_random_tiny_model

LIMIT = 3


def tiny_checkpoint(tokenize_artifact: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A checkpoint artifact (``<dest>/model``) holding a random tiny OLMo 2 and the tokenizer."""
    save_random_tiny_model(tokenize_artifact, dest / "model")
    return dest


def evaluate(
    out: pathlib.Path, model: pathlib.Path, world: pathlib.Path, **config
) -> tuple[dict, dict]:
    """Run the stage as the runner would (seeded, 1 thread); return (metrics, results.json)."""
    import numpy as np
    import torch

    config = validate_stage_config(
        "evaluate", {"seed": 7, "threads": 1, "limit": LIMIT, "specs": [], **config}
    )
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    torch.set_num_threads(1)
    out.mkdir(parents=True)
    metrics = run(config, as_inputs({"model": model, "world": world}), out, JobContext())
    return metrics, json.loads((out / "results.json").read_text(encoding="utf-8"))


def result_dir(out: pathlib.Path, task: str) -> pathlib.Path:
    """The result directory of a world task: ``specs/<safe spec id>/``."""
    return out / "specs" / world.TASK_IDS[task].replace("::", "__").replace(":", "_")


def samples(out: pathlib.Path, task: str) -> list[dict]:
    """The predictions rows of a world task."""
    lines = (result_dir(out, task) / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def payload(root: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenize_artifact) -> pathlib.Path:
    return tiny_checkpoint(tokenize_artifact, tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="module")
def index(world_artifact) -> dict:
    return json.loads((world_artifact / "eval" / "index.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pretrain_eval(tmp_path_factory, checkpoint, world_artifact):
    out = tmp_path_factory.mktemp("eval") / "pretrain"
    metrics, results = evaluate(out, checkpoint, world_artifact, checkpoint="pretrain")
    return out, metrics, results


@pytest.fixture(scope="module")
def sft_eval(tmp_path_factory, checkpoint, world_artifact):
    out = tmp_path_factory.mktemp("eval") / "sft"
    metrics, results = evaluate(out, checkpoint, world_artifact, checkpoint="sft")
    return out, metrics, results


def test_results_cover_every_task(pretrain_eval, index):
    out, metrics, results = pretrain_eval
    assert results["checkpoint"] == "pretrain" and not any(results["chat_template"].values())
    assert results["versions"]["lm_eval"] == "0.4.13"
    assert sorted(results["tasks"]) == sorted(index)
    for task, spec in index.items():
        expected = {"exact_match"} if spec["type"] == "generate" else {"acc", "acc_norm"}
        assert set(results["tasks"][task]) == expected, task
        assert all(0.0 <= v <= 1.0 for v in results["tasks"][task].values())
        assert results["instances"][task] == LIMIT
        rows = samples(out, task)
        assert [r["doc_id"] for r in rows] == list(range(LIMIT))
        report = eval_results.recompute(result_dir(out, task))
        assert report["problems"] == [] and report["recomputed"] == results["tasks"][task]
        assert results["specs"][world.TASK_IDS[task]]["name"] == task
    assert metrics == {
        f"{task}/{metric}": value
        for task, values in results["tasks"].items()
        for metric, value in values.items()
    }
    assert sorted(p.name for p in (out / "specs").iterdir()) == sorted(
        result_dir(out, t).name for t in index
    )
    assert all((result_dir(out, t) / "task.yaml").is_file() for t in index)


def test_payload_has_no_paths_or_times(pretrain_eval, world_artifact, checkpoint):
    out, _, results = pretrain_eval
    for name, data in payload(out).items():
        text = data.decode("utf-8")
        for forbidden in (str(world_artifact.resolve()), str(checkpoint), "/tmp/"):
            assert forbidden not in text, (name, forbidden)
    # lm-eval's date, timings, git hash and environment dump are left out.
    assert set(results) == {
        "chat_template", "checkpoint", "instances", "limit", "num_fewshot", "primary_metrics",
        "specs", "task_types", "tasks", "variants", "versions",
    }  # fmt: skip
    row = samples(out, "facts_mc")[0]
    assert set(row) == {"choices", "context", "doc_id", "gold", "id"}
    assert set(row["choices"][0]) == {"continuation", "is_greedy", "loglik", "n_chars"}
    yaml_text = (result_dir(out, "arith_gen") / "task.yaml").read_text(encoding="utf-8")
    assert 'test: "eval/arith_gen.jsonl"' in yaml_text


def test_generative_metric_is_the_shared_verifier(pretrain_eval):
    out, _, results = pretrain_eval
    rows = samples(out, "arith_gen")
    scores = [verifiers.numeric_answer(row["response"], row["target"]) for row in rows]
    assert results["tasks"]["arith_gen"]["exact_match"] == sum(scores) / len(scores)
    # The world family scores a response through the registry.
    spec = eval_results.load_result(result_dir(out, "arith_gen"))["spec"]
    right = {"response": "13 + 14 = 27. The answer is 27.", "target": "27"}
    wrong = {"response": "The answer is 26, not 27", "target": "27"}
    assert world.metrics([right], spec) == {"exact_match": 1.0}
    assert world.metrics([wrong], spec) == {"exact_match": 0.0}


def test_gold_response_scores_one_through_lm_eval(
    tmp_path, checkpoint, world_artifact, monkeypatch
):
    """End to end through lm-eval: responses come from a stub, scores from the registry."""
    from lm_eval.models.huggingface import HFLM

    def answer(self, requests, disable_tqdm=False):
        return [f"so the answer is {req.doc['answer']}." for req in requests]

    monkeypatch.setattr(HFLM, "generate_until", answer)
    gold = {"checkpoint": "pretrain", "tasks": ["arith_gen"]}
    _, results = evaluate(tmp_path / "a", checkpoint, world_artifact, **gold)
    assert results["tasks"] == {"arith_gen": {"exact_match": 1.0}}
    assert all(r["response"].endswith(".") for r in samples(tmp_path / "a", "arith_gen"))

    # Swap the registry entry: the metric follows, so metric and RLVR reward are one code path.
    monkeypatch.setitem(verifiers.VERIFIERS, "numeric_answer", lambda response, truth: 0.25)
    _, results = evaluate(tmp_path / "b", checkpoint, world_artifact, **gold)
    assert results["tasks"]["arith_gen"]["exact_match"] == pytest.approx(0.25)


def test_chat_prompts_differ_from_plain(pretrain_eval, sft_eval):
    plain, _, _ = pretrain_eval
    chat, _, chat_results = sft_eval
    assert chat_results["checkpoint"] == "sft"
    # auto: generative tasks are chat formatted, log-likelihood tasks keep the plain format.
    assert chat_results["chat_template"] == {
        task: kind == "generate" for task, kind in chat_results["task_types"].items()
    }

    plain_gen, chat_gen = samples(plain, "arith_gen")[0], samples(chat, "arith_gen")[0]
    prompt, kwargs = plain_gen["context"], plain_gen["generation_kwargs"]
    assert prompt.startswith("Question: ") and prompt.endswith("\nAnswer:")
    assert kwargs["until"] == ["\n"]
    prompt, kwargs = chat_gen["context"], chat_gen["generation_kwargs"]
    assert prompt.startswith("<|im_start|>user\nQuestion: ")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert kwargs["until"] == ["\n", "<|im_end|>"]

    # Multiple choice stays plain for the SFT checkpoint too: same requests as for pretrain.
    plain_mc, sft_mc = samples(plain, "facts_mc")[0], samples(chat, "facts_mc")[0]
    assert all(c["continuation"].startswith(" ") for c in plain_mc["choices"])
    assert sft_mc["context"] == plain_mc["context"]
    assert [c["continuation"] for c in sft_mc["choices"]] == [
        c["continuation"] for c in plain_mc["choices"]
    ]
    assert (result_dir(plain, "arith_gen") / "task.yaml").read_bytes() != (
        result_dir(chat, "arith_gen") / "task.yaml"
    ).read_bytes()


def test_bitwise_deterministic_and_location_independent(
    tmp_path, pretrain_eval, checkpoint, world_artifact
):
    """A second run, reading a copy of the world from another directory, gives the same bytes."""
    world_copy = tmp_path / "elsewhere" / "world"
    shutil.copytree(world_artifact, world_copy)
    out, _, _ = pretrain_eval
    evaluate(tmp_path / "again", checkpoint, world_copy, checkpoint="pretrain")
    first, second = payload(out), payload(tmp_path / "again")
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name] == second[name], name


def test_bad_config_is_named(tmp_path, checkpoint, world_artifact):
    with pytest.raises(ValueError, match=r"'tasks'.*no_such_task"):
        evaluate(
            tmp_path / "a", checkpoint, world_artifact, checkpoint="sft", tasks=["no_such_task"]
        )
    with pytest.raises(ValueError, match="'checkpoint'"):
        evaluate(tmp_path / "b", checkpoint, world_artifact)


def test_recompute_takes_the_whole_artifact(pretrain_eval, capsys):
    """``reprolm eval recompute <evaluate artifact>`` recomputes every result inside it."""
    from reprolm.cli import main

    out, _, results = pretrain_eval
    with pytest.raises(SystemExit) as done:
        main(["eval", "recompute", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and report["problems"] == []
    assert len(report["results"]) == len(results["specs"])
    # The per-result form still works.
    with pytest.raises(SystemExit) as done:
        main(["eval", "recompute", str(result_dir(out, "facts_mc")), "--json"])
    assert done.value.code == 0 and json.loads(capsys.readouterr().out)["problems"] == []
