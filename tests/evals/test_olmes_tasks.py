"""OLMES BoolQ, CommonsenseQA, MMLU, OpenBookQA, PIQA, Social IQa, WinoGrande (rc and mc).

Prompts of real fixture items (tests/fixtures/olmes/) against strings written by hand from the
OLMES reference templates (allenai/OLMo-Eval olmes_v0_1/*_std.py, allenai/olmes mmlu.py);
metrics from hand-made log-likelihoods against hand-computed numbers; a few real runs through
lm-eval on the tiny model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import sources
from evals.families import family
from evals.metrics import mc_metrics
from evals.multiple_choice import build_requests, evaluate_mc, load_hf, task_yaml
from evals.registry import SPECS, get_spec
from evals.report import best_format, compare_formats, markdown
from evals.rowschema import DatasetError, check_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "olmes"
TASKS = ("boolq", "csqa", "mmlu", "openbookqa", "piqa", "socialiqa", "winogrande")
PRIMARY_RC = {
    "boolq": "acc_raw", "csqa": "acc_uncond", "mmlu": "acc_per_char",
    "openbookqa": "acc_uncond", "piqa": "acc_per_char", "socialiqa": "acc_per_char",
    "winogrande": "acc_raw",
}  # fmt: skip
SPLIT = {
    "boolq": "validation", "csqa": "validation", "mmlu": "test", "openbookqa": "test",
    "piqa": "validation", "socialiqa": "validation", "winogrande": "validation",
}  # fmt: skip


def first(task: str, fmt: str, data: Path | None = None) -> dict:
    """The request of the fixture's first item."""
    data = data or FIXTURES / f"{task}.jsonl"
    return build_requests(get_spec(f"{task}:{fmt}::olmes"), data, None)[1][0]


def tail(context: str) -> str:
    """The query: what follows the last shot."""
    return context.rsplit("\n\n", 1)[1]


def assert_prompt(request: dict, opens: str, query: str) -> None:
    """The request's context starts with ``opens`` (its first shot) and ends in ``query``."""
    assert request["context"].startswith(opens)
    assert tail(request["context"]) == query


def test_registry_has_every_olmes_task_in_both_formats():
    for task in (*TASKS, "arc_easy", "arc_challenge", "hellaswag"):
        for fmt in ("rc", "mc"):
            spec = SPECS[f"{task}:{fmt}::olmes"]
            assert spec.fewshot.n == 5 and spec.sample_seed == 1234
            assert spec.primary_metric == (PRIMARY_RC.get(task, spec.primary_metric)
                                           if fmt == "rc" else "acc_raw")  # fmt: skip
    for task in TASKS:
        rc = SPECS[f"{task}:rc::olmes"]
        assert rc.split == SPLIT[task]
        assert (rc.uncond_context == "Answer:") == ("uncond" in rc.normalizations)
    # OLMES sets no instance limit for MMLU (57 subject tasks, each whole)
    assert SPECS["mmlu:rc::olmes"].sample_threshold > 14042
    assert SPECS["piqa:rc::olmes"].sample_threshold == 1500


def test_boolq_prompts():
    rc, mc = first("boolq", "rc"), first("boolq", "mc")
    passage = (
        "The Elder Scrolls Online -- As with other games in The Elder Scrolls series, the game "
        "is set on the continent of Tamriel."
    )
    assert tail(rc["context"]).startswith(passage)
    assert tail(rc["context"]).endswith(
        "game objective.\nQuestion: is elder scrolls online the same as skyrim?\nAnswer:"
    )
    assert rc["continuations"] == [" yes", " no"] and rc["gold"] == 1  # label 0: "no"
    assert tail(mc["context"]).endswith(
        "Question: is elder scrolls online the same as skyrim?\n A. yes\n B. no\nAnswer:"
    )
    assert mc["continuations"] == [" A", " B"] and mc["gold"] == 1
    first_shot = rc["context"].split("\n\n")[0]
    assert first_shot.startswith("Persian language -- Persian (/ˈpɜːrʒən, -ʃən/)")
    assert first_shot.endswith(
        "Aramaic alphabet.\nQuestion: do iran and afghanistan speak the same language?\nAnswer: yes"
    )
    assert rc["context"].count("\nAnswer: ") == 5


def test_csqa_prompts():
    rc, mc = first("csqa", "rc"), first("csqa", "mc")
    assert_prompt(
        rc,
        "Question: Sammy wanted to go to where the people were.  Where might he go?\n"
        "Answer: populated areas\n\nQuestion: ",
        "Question: What home entertainment equipment requires cable?\nAnswer:",
    )
    assert rc["continuations"] == [
        " radio shack",
        " substation",
        " cabinet",
        " television",
        " desk",
    ]
    assert rc["gold"] == 3
    assert_prompt(
        mc,
        "Question: Sammy wanted to go to where the people were.  Where might he go?\n"
        " A. race track\n B. populated areas\n C. the desert\n D. apartment\n E. roadblock\n"
        "Answer: B\n\n",
        "Question: What home entertainment equipment requires cable?\n A. radio shack\n"
        " B. substation\n C. cabinet\n D. television\n E. desk\nAnswer:",
    )
    assert mc["continuations"] == [" A", " B", " C", " D", " E"] and mc["gold"] == 3


def test_openbookqa_prompts():
    rc, mc = first("openbookqa", "rc"), first("openbookqa", "mc")
    assert_prompt(
        rc,
        "Question: When standing miles away from Mount Rushmore\n"
        "Answer: the mountains seem smaller than in photographs\n\n",
        "Question: an inherited characteristic found on all mammals is\nAnswer:",
    )
    assert rc["continuations"] == [" nails", " teeth", " shoes", " fur"] and rc["gold"] == 3
    assert tail(mc["context"]) == (
        "Question: an inherited characteristic found on all mammals is\n A. nails\n B. teeth\n"
        " C. shoes\n D. fur\nAnswer:"
    )
    assert mc["gold"] == 3


def test_piqa_prompts():
    rc, mc = first("piqa", "rc"), first("piqa", "mc")
    assert_prompt(
        rc,
        "Goal: how do you stab something?\nAnswer: stick a sharp object through it.\n\n",
        "Goal: What should I use as a stain on a wooden bowl I've just made.\nAnswer:",
    )
    assert rc["continuations"] == [
        " You should coat the wooden bowl with a butcher block oil & finish per manufacturer "
        "directions.",
        " You should coat the wooden bowl with a butcher knife oil & finish per manufacturer "
        "directions.",
    ]
    assert rc["gold"] == 0
    assert_prompt(
        mc,
        "Goal: how do you stab something?\n A. stick a sharp object through it.\n"
        " B. pin it with a sharp object.\nAnswer: A\n\n",
        "Goal: What should I use as a stain on a wooden bowl I've just made.\n"
        " A. You should coat the wooden bowl with a butcher block oil & finish per manufacturer "
        "directions.\n B. You should coat the wooden bowl with a butcher knife oil & finish per "
        "manufacturer directions.\nAnswer:",
    )


def test_socialiqa_prompts():
    rc, mc = first("socialiqa", "rc"), first("socialiqa", "mc")
    query = (
        "Question: Kendall worked the weekend at the steakhouse and made bank on tips. What will "
        "Kendall want to do next?"
    )
    assert_prompt(
        rc,
        "Question: Cameron decided to have a barbecue and gathered her friends together. How "
        "would Others feel as a result?\nAnswer: like attending\n\n",
        query + "\nAnswer:",
    )
    assert rc["continuations"] == [
        " Save the money",
        " get hired at the steakhouse",
        " Quit her job",
    ]
    assert rc["gold"] == 0
    assert tail(mc["context"]) == (
        query + "\n A. Save the money\n B. get hired at the steakhouse\n C. Quit her job\nAnswer:"
    )
    assert mc["continuations"] == [" A", " B", " C"]


def test_winogrande_rc_partial_scoring_and_mc_fill_in_the_blank():
    rc, mc = first("winogrande", "rc"), first("winogrande", "mc")
    shots = (
        "John moved the couch from the garage to the backyard to create space. The garage is "
        "small.\n\nDennis drew up a business proposal to present to Logan because Dennis wants "
        "his investment.\n\n"
    )
    head = "Emily was thrown out of the court for the lawsuit against Carrie because "
    assert "context" not in rc and len(rc["contexts"]) == 2
    assert rc["contexts"][0].startswith(shots) and rc["contexts"][0].count("\n\n") == 5
    assert rc["contexts"][0].endswith("\n\n" + head + "Emily")
    assert rc["contexts"][1].endswith("\n\n" + head + "Carrie")
    assert rc["contexts"][0][: -len("Emily")] == rc["contexts"][1][: -len("Carrie")]
    assert rc["continuation"] == " was the only one acting disruptively."
    assert rc["continuations"] == [rc["continuation"]] * 2 and rc["gold"] == 0
    assert mc["context"].startswith(
        "Fill in the blank: John moved the couch from the garage to the backyard to create "
        "space. The ___ is small.\n A. garage\n B. backyard\nAnswer: A\n\n"
    )
    assert tail(mc["context"]) == (
        "Fill in the blank: " + head + "___ was the only one acting disruptively.\n A. Emily\n"
        " B. Carrie\nAnswer:"
    )
    assert mc["continuations"] == [" A", " B"]
    second = build_requests(get_spec("winogrande:rc::olmes"), FIXTURES / "winogrande.jsonl", None)
    assert second[1][1]["gold"] == 1  # answer "2"


def test_winogrande_task_yaml_uses_lm_eval_multiple_input():
    text = task_yaml("t", "data.jsonl", multiple_input=True)
    assert "doc_to_text: gold\n" in text and "doc_to_choice: contexts\n" in text
    assert "doc_to_target: continuation\n" in text
    assert "doc_to_text: context\n" in task_yaml("t", "data.jsonl")


def _dataset_dict(tmp_path: Path, splits: dict[str, Path]) -> Path:
    from datasets import Dataset, DatasetDict

    saved = tmp_path / "saved"
    DatasetDict(
        {name: Dataset.from_list(sources.read_jsonl(path)) for name, path in splits.items()}
    ).save_to_disk(str(saved))
    return saved


@pytest.fixture
def mmlu_dir(tmp_path):
    return _dataset_dict(
        tmp_path, {"test": FIXTURES / "mmlu_test.jsonl", "dev": FIXTURES / "mmlu_dev.jsonl"}
    )


def test_mmlu_prompt_from_a_saved_dataset_dict(mmlu_dir):
    """OLMES MMLU: the subject's description, its 5 dev items in dev order, the query."""
    statements = " A. True, True\n B. False, False\n C. True, False\n D. False, True\n"
    expected_mc = (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Question: Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\n"
        " A. 0\n B. 1\n C. 2\n D. 3\nAnswer: B\n\n"
        "Question: Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. "
        "Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\n"
        f"{statements}Answer: B\n\n"
        "Question: Statement 1 | Every element of a group generates a cyclic subgroup of the "
        "group. Statement 2 | The symmetric group S_10 has 10 elements.\n"
        f"{statements}Answer: C\n\n"
        "Question: Statement 1| Every function from a finite set onto itself must be one to "
        "one. Statement 2 | Every subgroup of an abelian group is abelian.\n"
        f"{statements}Answer: A\n\n"
        "Question: Find the characteristic of the ring 2Z.\n A. 0\n B. 3\n C. 12\n D. 30\n"
        "Answer: A\n\n"
        "Question: Find the degree for the given field extension Q(sqrt(2), sqrt(3), "
        "sqrt(18)) over Q.\n A. 0\n B. 4\n C. 2\n D. 6\nAnswer:"
    )
    mc = first("mmlu", "mc", mmlu_dir)
    assert mc["context"] == expected_mc
    assert mc["continuations"] == [" A", " B", " C", " D"] and mc["gold"] == 1
    assert mc["group"] == "abstract_algebra"
    rc = first("mmlu", "rc", mmlu_dir)
    assert rc["context"].startswith(
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        "Question: Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nAnswer: 1\n\n"
    )
    assert tail(rc["context"]) == (
        "Question: Find the degree for the given field extension Q(sqrt(2), sqrt(3), "
        "sqrt(18)) over Q.\nAnswer:"
    )
    assert rc["continuations"] == [" 0", " 4", " 2", " 6"]


def test_mmlu_needs_the_dev_split(tmp_path):
    with pytest.raises(ValueError, match=r"mmlu_test.jsonl: mmlu:mc::olmes takes its shots from"):
        first("mmlu", "mc", FIXTURES / "mmlu_test.jsonl")
    test_only = _dataset_dict(tmp_path, {"test": FIXTURES / "mmlu_test.jsonl"})
    with pytest.raises(ValueError, match=r"splits \['test'\]; split 'dev' is not one of them"):
        first("mmlu", "rc", test_only)


def test_saved_dataset_dict_is_read_at_the_spec_split(tmp_path):
    saved = _dataset_dict(tmp_path, {"validation": FIXTURES / "piqa.jsonl"})
    assert first("piqa", "mc", saved) == first("piqa", "mc")
    wrong = _dataset_dict(tmp_path / "w", {"train": FIXTURES / "piqa.jsonl"})
    with pytest.raises(ValueError, match=r"split 'validation' is not one of them"):
        first("piqa", "mc", wrong)


@pytest.mark.parametrize(
    ("task", "row", "message"),
    [
        ("boolq", {"passage": "p", "question": "q", "label": 2}, "label/answer 2 is not 0/1"),
        ("csqa", {"question": "q", "choices": {"label": ["A"], "text": ["a"]}, "answerKey": "E"},
         "CommonsenseQA answerKey 'E' is none of the labels"),
        ("piqa", {"goal": "g", "sol1": "a", "label": 0},
         r"not a valid PIQA record \(fields: goal, sol1, sol2, label 0/1\): KeyError\('sol2'\)"),
        ("socialiqa", {"context": "c", "question": "q", "answerA": "a", "answerB": "b",
                       "answerC": "c", "label": "4"}, "label '4' is not 1, 2 or 3"),
        ("winogrande", {"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"},
         "the sentence has 0 blanks"),
        ("openbookqa", {"question": "q"}, "not a valid OpenBookQA record"),
    ],
)  # fmt: skip
def test_bad_record_names_file_and_line(tmp_path, task, row, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*" + message):
        first(task, "rc", bad)


def _row(group, gold, logliks, n_chars=None, uncond=None):
    choices = []
    for k, ll in enumerate(logliks):
        choice = {"loglik": ll, "n_tokens": 1, "n_chars": (n_chars or [1] * len(logliks))[k]}
        if uncond is not None:
            choice["uncond_loglik"] = uncond[k]
        choices.append(choice)
    row = {"gold": gold, "choices": choices}
    return {**row, "group": group} if group else row


def test_csqa_rc_metrics_by_hand():
    """Hand-made log-likelihoods; acc_uncond (CSQA's primary) picks max loglik - uncond."""
    rows = [
        # raw picks 0 (wrong); per_char: -2/2=-1, -3/6=-0.5 -> 1 (right); uncond: -2+1, -3+4 -> 1
        _row(None, 1, [-2.0, -3.0], n_chars=[2, 6], uncond=[-1.0, -4.0]),
        # raw 1 (right); per_char -4/4=-1, -3/1=-3 -> 0; uncond -4+5=1, -3+3=0 -> 0 (wrong)
        _row(None, 1, [-4.0, -3.0], n_chars=[4, 1], uncond=[-5.0, -3.0]),
    ]
    spec = get_spec("csqa:rc::olmes").to_dict()
    metrics = family("multiple_choice").metrics(rows, spec)
    assert metrics == {"acc_raw": 0.5, "acc_per_token": 0.5, "acc_per_char": 0.5,
                       "acc_uncond": 0.5}  # fmt: skip
    assert family("multiple_choice").metrics(rows[:1], spec)["acc_uncond"] == 1.0


def test_mmlu_macro_average_over_subjects_by_hand():
    """OLMES' MMLU score is the macro average over subjects (suite primary_metric "macro")."""
    rows = [_row("anatomy", 0, [-1.0, -2.0])] * 3 + [_row("anatomy", 0, [-3.0, -2.0])]
    rows += [_row("virology", 1, [-1.0, -2.0])]  # anatomy 3/4, virology 0/1
    metrics = mc_metrics(rows, ("raw",))
    assert metrics["acc_raw"] == (0.75 + 0.0) / 2 == 0.375
    assert metrics["acc_raw_micro"] == 3 / 5
    assert mc_metrics([{k: v for k, v in r.items() if k != "group"} for r in rows], ("raw",)) == {
        "acc_raw": 0.6
    }


def test_winogrande_rc_scores_the_same_continuation_after_each_context():
    rows = [_row(None, 0, [-5.0, -7.5]), _row(None, 1, [-5.0, -4.0]), _row(None, 1, [-2.0, -3.0])]
    assert mc_metrics(rows, ("raw",)) == {"acc_raw": 2 / 3}


def _result(task_id: str, primary: float) -> dict:
    spec = get_spec(task_id)
    return {"task_id": task_id, "primary": primary, "primary_metric": spec.primary_metric,
            "spec_hash": "ab" * 32}  # fmt: skip


def test_report_takes_the_better_format_as_olmes_does():
    rows = compare_formats(
        [
            _result("piqa:rc::olmes", 0.61),
            _result("piqa:mc::olmes", 0.55),
            _result("mmlu:rc::olmes", 0.31),
            _result("mmlu:mc::olmes", 0.42),
            _result("boolq:rc::olmes", 0.6),
            _result("boolq:mc::olmes", 0.6),
        ]
    )
    best = {r["task"]: (r["best"], r["best_format"]) for r in rows}
    assert best == {"boolq": (0.6, "rc"), "mmlu": (0.42, "mc"), "piqa": (0.61, "rc")}
    assert best_format({"rc": 0.3, "mc": 0.3}) == (0.3, "rc")  # a tie goes to rc
    assert best_format({"mc": 0.2}) == (0.2, "mc") and best_format({}) == (None, None)
    text = markdown(rows)
    assert "| mmlu | olmes |" in text and "0.4200 (mc) |" in text
    assert text.endswith("average of the best scores (3 tasks): 0.5433")  # (0.6+0.42+0.61)/3
    assert "average" not in markdown(compare_formats([_result("piqa:rc::olmes", 0.61)]))


def test_eval_report_command_prints_the_best_format(tmp_path, capsys):
    from reprolm.cli import main

    paths = []
    for task_id, value in (("csqa:rc::olmes", 0.4), ("csqa:mc::olmes", 0.45)):
        out = tmp_path / task_id.replace(":", "_")
        out.mkdir()
        rc = task_id.startswith("csqa:rc")
        metrics = {"acc_raw": value, "acc_per_token": value, "acc_per_char": value,
                   "acc_uncond": value} if rc else {"acc_raw": value}  # fmt: skip
        result = {**_result(task_id, value), "metrics": metrics, "schema": "reprolm.eval.result/1"}
        (out / "result.json").write_text(json.dumps(result))
        paths.append(str(out))
    with pytest.raises(SystemExit) as done:
        main(["eval", "report", *paths, "--json"])
    [row] = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and (row["best"], row["best_format"]) == (0.45, "mc")


def test_rowschema_accepts_the_released_schemas_and_names_bad_rows(tmp_path, mmlu_dir):
    for task in ("boolq", "csqa", "openbookqa", "piqa", "socialiqa", "winogrande"):
        assert check_dataset(FIXTURES / f"{task}.jsonl", [f"{task}:rc::olmes"]) == 2
    assert check_dataset(FIXTURES / "mmlu_test.jsonl", ["mmlu:mc::olmes"]) == 2
    assert check_dataset(mmlu_dir, ["mmlu:mc::olmes"]) is None
    bad = tmp_path / "wino.jsonl"
    bad.write_text(json.dumps({"sentence": "a _ b", "option1": "x", "option2": "y",
                               "answer": "3"}) + "\n")  # fmt: skip
    with pytest.raises(DatasetError, match=r"wino.jsonl:1: multiple_choice: 'answer' is '3'"):
        check_dataset(bad, ["winogrande:rc::olmes"])
    rows = sources.read_jsonl(FIXTURES / "mmlu_dev.jsonl")
    rows[1]["answer"] = 7
    saved = tmp_path / "bad_mmlu"
    from datasets import Dataset, DatasetDict

    DatasetDict({"dev": Dataset.from_list(rows)}).save_to_disk(str(saved))
    with pytest.raises(DatasetError, match=r"bad_mmlu\[dev\]:2: multiple_choice: 'answer' is 7"):
        check_dataset(saved, ["mmlu:mc::olmes"])
    plain = tmp_path / "folder"
    plain.mkdir()
    (plain / "rows.jsonl").write_text("{}\n")
    with pytest.raises(DatasetError, match=r"must be a datasets save_to_disk folder"):
        check_dataset(plain, ["piqa:rc::olmes"])


@pytest.fixture(scope="module")
def lm(tiny_model):
    return load_hf(tiny_model, 1)


@pytest.mark.slow
@pytest.mark.parametrize("task_id", ["csqa:rc::olmes", "piqa:mc::olmes", "winogrande:rc::olmes"])
def test_runs_through_lm_eval_and_recomputes(task_id, tiny_model, lm, tmp_path):
    from evals import lmeval
    from evals.results import recompute

    data = FIXTURES / f"{task_id.split(':')[0]}.jsonl"
    out = tmp_path / "result"
    result = evaluate_mc(get_spec(task_id), tiny_model, data, out, lm=lm)
    assert result["instances"] == 2 and result["primary_metric"] == get_spec(task_id).primary_metric
    assert result["harness"]["lm_eval_acc"] == result["metrics"]["acc_raw"]
    report = recompute(out)
    assert not report["problems"] and report["recomputed"] == report["stored"]
    # Every (context, continuation) lm-eval scored equals a direct log-likelihood request.
    requests = sources.read_jsonl(out / "requests.jsonl")
    predictions = sources.read_jsonl(out / "predictions.jsonl")
    for request, row in zip(requests, predictions, strict=True):
        contexts = request.get("contexts") or [request["context"]] * len(row["choices"])
        direct = [
            {"doc_id": k, "context": ctx, "continuations": [cont]}
            for k, (ctx, cont) in enumerate(zip(contexts, request["continuations"], strict=True))
        ]
        scored = lmeval.loglikelihoods(lm, direct)
        assert [scored[k][0]["loglik"] for k in range(len(direct))] == [
            c["loglik"] for c in row["choices"]
        ]


def test_instance_texts_of_a_saved_dataset_dict_follow_the_olmes_split_rule(tmp_path):
    from evals.multiple_choice import texts

    unlabeled = [{**r, "label": -1} for r in sources.read_jsonl(FIXTURES / "piqa.jsonl")][:1]
    (tmp_path / "test.jsonl").write_text(json.dumps(unlabeled[0]) + "\n")
    piqa = _dataset_dict(
        tmp_path, {"test": tmp_path / "test.jsonl", "validation": FIXTURES / "piqa.jsonl"}
    )
    goals = [r["goal"] for r in sources.read_jsonl(FIXTURES / "piqa.jsonl")]
    assert texts(piqa) == goals  # PIQA's test split is unlabeled: validation
    mmlu = _dataset_dict(
        tmp_path / "m", {"test": FIXTURES / "mmlu_test.jsonl", "dev": FIXTURES / "mmlu_dev.jsonl"}
    )
    assert texts(mmlu)[0].startswith("Find the degree for the given field extension")
    siqa = texts(FIXTURES / "socialiqa.jsonl")[0]
    assert siqa.startswith("Kendall worked the weekend") and siqa.endswith("want to do next?")


def test_eval_spec_resolves_a_saved_dataset_dict(mmlu_dir, capsys):
    from reprolm.cli import main

    with pytest.raises(SystemExit) as done:
        main(["eval", "spec", "mmlu:mc::olmes", "--data", str(mmlu_dir), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and doc["spec"]["dataset_rows"] == 2
    assert doc["spec"]["fewshot_digest"] is None  # the shots are the dataset's dev split
    assert doc["spec"]["dataset_digest"] == sources.digest(mmlu_dir)


def _loglik(score: float, norm: str, n_chars: int, uncond: float) -> float:
    """The log-likelihood whose ``norm``-normalized score is ``score`` (n_tokens = 1)."""
    return {"per_char": score * n_chars, "uncond": score + uncond}.get(norm, score)


@pytest.mark.parametrize("fmt", ["rc", "mc"])
@pytest.mark.parametrize("task", TASKS)
def test_primary_metric_of_hand_made_logliks_on_real_items(task, fmt, mmlu_dir, tmp_path):
    """Item 1: the gold choice scores best under the primary normalization; item 2: worst.
    So the primary is 1/2, whatever the task's gold indices and continuation lengths."""
    from evals.results import recompute, write_result

    spec = get_spec(f"{task}:{fmt}::olmes")
    norm = spec.primary_metric.removeprefix("acc_")
    data = mmlu_dir if task == "mmlu" else FIXTURES / f"{task}.jsonl"
    resolved, requests = build_requests(spec, data, None)
    rows = []
    for number, request in enumerate(requests):
        choices = []
        for k, cont in enumerate(request["continuations"]):
            best = k == request["gold"]
            score = (0.0 if best else -1.0) if number == 0 else (-2.0 if best else -1.0)
            choice = {"continuation": cont, "n_tokens": 1, "n_chars": len(cont),
                      "loglik": _loglik(score, norm, len(cont), -3.0)}  # fmt: skip
            if spec.uncond_context:
                choice["uncond_loglik"] = -3.0
            choices.append(choice)
        rows.append({"doc_id": number, "id": request["id"], "gold": request["gold"],
                     "choices": choices, **({"group": request["group"]} if "group" in request
                                            else {})})  # fmt: skip
    metrics = family("multiple_choice").metrics(rows, resolved)
    assert metrics[spec.primary_metric] == 0.5
    # The same rows as a saved result recompute to the same numbers.
    from evals.results import envelope

    result = envelope(spec, "multiple_choice", resolved, metrics, instances=len(rows))
    write_result(tmp_path, result, rows)
    report = recompute(tmp_path)
    assert not report["problems"] and report["recomputed"][spec.primary_metric] == 0.5


def test_parquet_split_is_checked_and_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sources.read_jsonl(FIXTURES / "socialiqa.jsonl")
    good = tmp_path / "siqa.parquet"
    pq.write_table(pa.Table.from_pylist(rows), good)
    assert check_dataset(good, ["socialiqa:mc::olmes"]) == 2
    assert first("socialiqa", "mc", good) == first("socialiqa", "mc")
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([rows[0], {**rows[1], "label": "9"}]), bad)
    with pytest.raises(DatasetError, match=r"bad.parquet:2: multiple_choice: 'label' is '9'"):
        check_dataset(bad, ["socialiqa:rc::olmes"])
