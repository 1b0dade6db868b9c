"""rc/mc runs through lm-eval on a tiny random OLMo 2, checked against plain lm-eval.

Scores of a random model mean nothing; the assertions are about prompts, scoring and exact
reproducibility. Eval set: the ARC-Challenge few-shot pool (11 items, first LIMIT) with the
ARC-Easy curated shots, so no instance is its own shot.
"""

from __future__ import annotations

import json

import pytest

from evals import sources
from evals.multiple_choice import evaluate_mc, load_hf
from evals.registry import get_spec
from reprolm.cli import main
from tests.evals.conftest import ARC_CHALLENGE

LIMIT = 4
pytestmark = pytest.mark.slow


def plain_task_yaml(name: str, shots: list[dict]) -> str:
    """The ARC rc task as a plain lm-eval user would write it (lm-eval's own few-shot)."""
    config = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(ARC_CHALLENGE)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_choice": "{{choices.text}}",
        "doc_to_target": "{{choices.label.index(answerKey)}}",
        "num_fewshot": 5,
        "fewshot_config": {"sampler": "first_n", "samples": shots},
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }
    return json.dumps(config)  # JSON is YAML


@pytest.fixture(scope="module")
def rc_run(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("rc") / "result"
    result = evaluate_mc(
        get_spec("arc_easy:rc::olmes"), tiny_model, ARC_CHALLENGE, out, limit=LIMIT
    )
    return out, result


def test_accuracy_equals_plain_lm_eval(rc_run, tiny_model, tmp_path):
    out, result = rc_run
    spec = get_spec("arc_easy:rc::olmes")
    shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
    (tmp_path / "plain_arc.yaml").write_text(plain_task_yaml("plain_arc", shots))
    import lm_eval
    from lm_eval.tasks import TaskManager

    plain = lm_eval.simple_evaluate(
        model=load_hf(tiny_model, 1),
        tasks=["plain_arc"],
        limit=LIMIT,
        bootstrap_iters=0,
        log_samples=True,
        task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
    )
    assert result["metrics"]["acc_raw"] == plain["results"]["plain_arc"]["acc,none"]
    assert result["harness"]["lm_eval_acc"] == result["metrics"]["acc_raw"]
    # Same prompts, same continuations, same log-likelihoods, instance by instance.
    predictions = sources.read_jsonl(out / "predictions.jsonl")
    requests = sources.read_jsonl(out / "requests.jsonl")
    for sample in sorted(plain["samples"]["plain_arc"], key=lambda s: s["doc_id"]):
        row, request = predictions[sample["doc_id"]], requests[sample["doc_id"]]
        assert [a[0] for a in sample["arguments"]] == [request["context"]] * len(row["choices"])
        assert [a[1] for a in sample["arguments"]] == request["continuations"]
        assert [r[0][0] for r in sample["resps"]] == [c["loglik"] for c in row["choices"]]


def test_result_records_spec_model_and_all_normalizations(rc_run):
    _, result = rc_run
    assert set(result["metrics"]) == {"acc_raw", "acc_per_token", "acc_per_char", "acc_uncond"}
    assert result["primary_metric"] == "acc_per_char"
    assert result["instances"] == LIMIT and result["spec"]["fewshot"]["n"] == 5
    assert len(result["spec_hash"]) == 64 and len(result["model"]["digest"]) == 64
    assert result["harness"]["versions"]["lm_eval"] == "0.4.13"
    row = sources.read_jsonl(rc_run[0] / "predictions.jsonl")[0]
    assert all({"loglik", "uncond_loglik", "n_tokens", "n_chars"} <= set(c) for c in row["choices"])


def test_recompute_is_bit_for_bit(rc_run, tmp_path, capsys):
    out, _ = rc_run
    with pytest.raises(SystemExit) as done:
        main(["eval", "recompute", str(out / "result.json"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and report["problems"] == []
    assert report["recomputed"] == report["stored"]
    # A changed log-likelihood is caught.
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("result.json", "predictions.jsonl"):
        (copy / name).write_bytes((out / name).read_bytes())
    rows = sources.read_jsonl(copy / "predictions.jsonl")
    rows[0]["choices"][rows[0]["gold"]]["loglik"] = 0.0
    (copy / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SystemExit) as done:
        main(["eval", "recompute", str(copy)])
    assert done.value.code == 1 and "blake3 differs" in capsys.readouterr().out


def test_mc_run_report_and_determinism(rc_run, tiny_model, tmp_path, capsys):
    spec = get_spec("arc_easy:mc::olmes")
    lm = load_hf(tiny_model, 1)
    first = evaluate_mc(spec, tiny_model, ARC_CHALLENGE, tmp_path / "a", limit=LIMIT, lm=lm)
    evaluate_mc(spec, tiny_model, ARC_CHALLENGE, tmp_path / "b", limit=LIMIT, lm=lm)
    for name in ("result.json", "predictions.jsonl", "requests.jsonl", "task.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert set(first["metrics"]) == {"acc_raw"} and first["spec"]["uncond_context"] is None
    request = sources.read_jsonl(tmp_path / "a" / "requests.jsonl")[0]
    assert request["continuations"] == [" A", " B", " C", " D"]
    assert "\n A. " in request["context"]
    with pytest.raises(SystemExit):
        main(["eval", "report", str(rc_run[0]), str(tmp_path / "a"), "--json"])
    [row] = json.loads(capsys.readouterr().out)
    assert row["best"] == max(row["rc"], row["mc"])
    assert row["rc_spec_hash"] != row["mc_spec_hash"]
