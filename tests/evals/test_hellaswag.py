"""HellaSwag rc/mc specs: OLMES preprocessing and prompts, real runs on the tiny model.

Eval set: the last 6 items of the bundled OLMES pool (the specs' shots are its first 5), so no
instance is its own shot. Scores of a random model mean nothing; the assertions are about the
prompts, lm-eval agreement, exact recomputation and truncation recording.
"""

from __future__ import annotations

import json

import pytest

from evals import hellaswag, sources
from evals.multiple_choice import build_requests, evaluate_mc, load_hf
from evals.registry import get_spec
from reprolm.cli import main

POOL = sources.read_jsonl(sources.bundled("olmes_hellaswag_fewshot.jsonl"))
TEST_ROWS = POOL[5:]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("hellaswag") / "hellaswag_val.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TEST_ROWS), encoding="utf-8")
    return path


def test_preprocess_follows_olmes():
    # lm-eval's " [title]" -> ". " doubles the stop after a sentence; OLMES' pattern does not.
    assert hellaswag.preprocess(" a [title] b. [title] c [step] d [substeps] e ") == ("a. b. c d e")


def test_rc_and_mc_prompts_of_a_fixture_item(data):
    rc = build_requests(get_spec("hellaswag:rc::olmes"), data, 1)[1][0]
    mc = build_requests(get_spec("hellaswag:mc::olmes"), data, 1)[1][0]
    query = (
        "Arm wrestling: Two bodybuilder women are seated at a table. They are arm wrestling, "
        "vieing to win. When there"
    )
    endings = [
        "'s another wrestler, they finish wrestling him.",
        "is a winner they go cheer each other on.",
        "is a victor, the two women shake hands.",
        "is not a winner, they get a huge kick in the face and continue wrestling as the crowd "
        "cheers on.",
    ]
    first_shot = (
        "Health: How to cope with suicidal thoughts. Put off any plans. Promise yourself that "
        "you'll wait 48 hours before doing anything. Remember, thoughts don't have the power to "
        "force you to act. Sometimes extreme pain can distort our perception. Waiting before "
        "taking action will give your mind time to clear.\n\n"
    )
    assert rc["context"].startswith(first_shot) and rc["context"].endswith("\n\n" + query)
    assert rc["context"].count("\n\n") == 5 and rc["gold"] == 2
    assert rc["continuations"] == [" " + e for e in endings]
    lines = "".join(f" {'ABCD'[i]}. {e}\n" for i, e in enumerate(endings))
    assert mc["context"].endswith(f"\n\n{query}\nChoose the best continuation:\n{lines}Answer:")
    assert "\nAnswer: D\n\n" in mc["context"]  # the first shot's gold letter (label 3)
    assert mc["continuations"] == [" A", " B", " C", " D"]


def test_queries_match_lm_eval_hellaswag_utils():
    """Independent check against lm-eval's own HellaSwag preprocessing (identical wherever no
    "[title]" follows a full stop, the one place OLMES fixed it)."""
    from lm_eval.tasks.hellaswag import utils

    checked = 0
    for index, row in enumerate(POOL):
        item = hellaswag.item(row, str(index))
        if ". [title]" in json.dumps(row):
            continue
        checked += 1
        ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
        expected = utils.preprocess(row["activity_label"] + ": " + ctx)
        assert item.question == expected
        assert list(item.choices) == [utils.preprocess(e) for e in row["endings"]]
    assert checked >= 8


def test_bad_record_is_named(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**TEST_ROWS[0], "label": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not a HellaSwag record"):
        build_requests(get_spec("hellaswag:rc::olmes"), bad, None)


@pytest.mark.slow
def test_rc_run_plain_lm_eval_and_recompute(tiny_model, data, tmp_path, capsys):
    lm = load_hf(tiny_model, 1)
    out = tmp_path / "rc"
    result = evaluate_mc(get_spec("hellaswag:rc::olmes"), tiny_model, data, out, lm=lm)
    assert result["primary_metric"] == "acc_per_char" and result["instances"] == 6
    assert set(result["metrics"]) == {"acc_raw", "acc_per_token", "acc_per_char", "acc_uncond"}
    assert result["harness"]["truncated_instances"] == 0
    # A plain lm-eval task over the same rendered requests reports the same accuracy.
    plain = {
        "task": "plain_hellaswag",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(out / "requests.jsonl")}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{context}}",
        "doc_to_choice": "{{continuations}}",
        "doc_to_target": "{{gold}}",
        "target_delimiter": "",
        "metric_list": [{"metric": "acc"}],
        "metadata": {"version": 1.0},
    }
    (tmp_path / "plain_hellaswag.yaml").write_text(json.dumps(plain))
    import lm_eval
    from lm_eval.tasks import TaskManager

    report = lm_eval.simple_evaluate(
        model=lm,
        tasks=["plain_hellaswag"],
        bootstrap_iters=0,
        task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
    )
    assert report["results"]["plain_hellaswag"]["acc,none"] == result["metrics"]["acc_raw"]
    with pytest.raises(SystemExit) as done:
        main(["eval", "recompute", str(out), "--json"])
    recomputed = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and recomputed["recomputed"] == recomputed["stored"]


@pytest.mark.slow
def test_mc_run_records_left_truncation(tiny_model, data, tmp_path, capsys):
    """A 96-token context cannot hold 5 shots: lm-eval keeps the last tokens, and the result
    says so per request and in total."""
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(tiny_model), device="cpu", batch_size=1, max_length=96)
    out = tmp_path / "mc"
    result = evaluate_mc(get_spec("hellaswag:mc::olmes"), tiny_model, data, out, lm=lm)
    assert set(result["metrics"]) == {"acc_raw"} and result["harness"]["max_length"] == 96
    assert result["harness"]["truncated_instances"] == result["instances"] == 6
    for request in sources.read_jsonl(out / "requests.jsonl"):
        ctx, cont = lm._encode_pair(request["context"], " A")
        assert request["context_tokens"] == len(ctx) > 96
        assert request["truncated_tokens"] == len(ctx) + len(cont) - 1 - 96
    with pytest.raises(SystemExit) as done:
        main(["eval", "recompute", str(out), "--json"])
    assert done.value.code == 0
