"""acc_per_char uses lm-eval's (and OLMES') denominator: characters of the scored continuation,
leading space included. Checked against lm-eval's own ``acc_norm`` on the same requests."""

from __future__ import annotations

import pytest

from evals import sources
from evals.metrics import predicted
from evals.multiple_choice import evaluate_mc
from evals.registry import get_spec
from tests.evals.conftest import ARC_CHALLENGE

pytestmark = pytest.mark.slow


def test_acc_per_char_equals_lm_eval_acc_norm(tiny_model, tmp_path):
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = tmp_path / "rc"
    result = evaluate_mc(get_spec("arc_easy:rc::olmes"), tiny_model, ARC_CHALLENGE, out, limit=6)
    # lm-eval over the very requests the project scored (task.yaml: continuations carry their
    # leading space, target_delimiter ""), with its acc_norm metric added.
    text = (
        (out / "task.yaml")
        .read_text()
        .replace("  - metric: acc\n", "  - metric: acc\n  - metric: acc_norm\n")
    )
    text = text.replace('test: "requests.jsonl"', f'test: "{out / "requests.jsonl"}"')
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "task.yaml").write_text(text)
    name = text.split("task: ")[1].split("\n")[0]
    plain = lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_model},dtype=float32",
        tasks=[name],
        device="cpu",
        log_samples=True,
        bootstrap_iters=0,
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
    )
    samples = {s["doc_id"]: s for s in plain["samples"][name]}
    rows = sources.read_jsonl(out / "predictions.jsonl")
    for row in rows:
        assert float(samples[row["doc_id"]]["acc_norm"]) == float(
            predicted(row, "per_char") == row["gold"]
        )
        assert all(c["n_chars"] == len(c["continuation"]) for c in row["choices"])
        assert all(c["continuation"].startswith(" ") for c in row["choices"])
    assert result["metrics"]["acc_per_char"] == plain["results"][name]["acc_norm,none"]
