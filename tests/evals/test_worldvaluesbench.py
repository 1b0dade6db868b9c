"""WorldValuesBench: W1 against scipy, metrics by hand, the loader on generated data in the
released layout (the survey answers may not be redistributed), runs on the tiny model,
upstream-format scoring and exact recompute."""

from __future__ import annotations

import json
import random

import pytest

from evals import distributions as dist
from evals import worldvaluesbench as wvb
from evals.registry import get_spec
from reprolm.cli import main
from tests.evals import wvb_data
from tests.evals.chat_model import with_chatml

PROBS, SAMPLED = get_spec("worldvaluesbench::probe"), get_spec("worldvaluesbench:cot::probe")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return wvb_data.write(tmp_path_factory.mktemp("wvb") / "WorldValuesBench")


@pytest.fixture(scope="module")
def chat_model(tiny_model, tmp_path_factory):
    return with_chatml(tiny_model, tmp_path_factory.mktemp("wvb-model") / "model")


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_wasserstein_matches_scipy():
    from scipy.stats import wasserstein_distance

    rng = random.Random(0)
    for _ in range(300):
        u = [rng.random() for _ in range(rng.randint(1, 9))]
        v = [rng.choice([*u, rng.random()]) for _ in range(rng.randint(1, 9))]
        uw, vw = [rng.random() for _ in u], [rng.random() for _ in v]
        assert dist.wasserstein1(u, v, uw, vw) == pytest.approx(
            wasserstein_distance(u, v, uw, vw), abs=1e-12
        )
        assert dist.wasserstein1(u, v) == pytest.approx(wasserstein_distance(u, v), abs=1e-12)
    # Scale positions (k-1)/(K-1): a 4-point scale; all mass moved end to end costs 1.
    assert dist.scale_positions(4) == [0.0, 1 / 3, 2 / 3, 1.0]
    assert dist.wasserstein1([0.0, 1.0], [0.0, 1.0], [1, 0], [0, 1]) == 1.0


def test_parse_score_and_hand_computed_metrics():
    assert wvb.parse_score('{"thoughtful explanation": "x", "answer as a score": "3"', [1, 4]) == 3
    assert wvb.parse_score("answer as a score: 3", [1, 4]) is None  # the JSON key is required
    assert wvb.parse_score(" 2 ", [1, 4]) == 2 and wvb.parse_score("7", [1, 4]) is None
    rows = [  # Q1 (scale 1..2): model 50/50 against humans all "1" -> W1 0.5
        {"question_id": "Q1", "group": "A", "scale": [1, 2], "human": 1,
         "choices": [{"loglik": -1.0}, {"loglik": -1.0}]},
        {"question_id": "Q1", "group": "B", "scale": [1, 2], "human": 1,
         "choices": [{"loglik": -1.0}, {"loglik": -1.0}]},
        # Q2 (0..2): sampled answers match the humans in group A; group B never parses -> 1.0
        {"question_id": "Q2", "group": "A", "scale": [0, 2], "human": 2, "samples": ["2", "2"]},
        {"question_id": "Q2", "group": "B", "scale": [0, 2], "human": 0, "samples": ["x", "9"]},
    ]  # fmt: skip
    parts = wvb.breakdown(rows)
    assert parts["questions"]["Q1"] == pytest.approx(0.5)
    assert parts["groups"]["Q2 | A"] == 0.0 and parts["groups"]["Q2 | B"] == 1.0
    # Q2 pooled: model = {2: 1}, humans = {0: .5, 2: .5} -> half the mass moves 1 -> 0.5
    assert parts["questions"]["Q2"] == pytest.approx(0.5)
    m = wvb.metrics(rows, {"threshold": 0.2})
    assert m["questions_below_threshold"] == 0.0 and m["groups_below_threshold"] == 0.25
    assert m["invalid"] == 0.5 and m["mean_w1"] == pytest.approx(0.5)


def test_loader_reads_the_released_layout_and_names_bad_input(data, tmp_path):
    items, digests = wvb.load(PROBS, data)
    assert len(items) == 3 * 8 * 2 and sorted(digests) == sorted(
        [wvb.METADATA, wvb.SAMPLES, wvb.DEMOGRAPHICS, wvb.VALUES]
    )
    first = items[0]
    assert first.group == "Europe | Urban | Tertiary" and first.scale == (1, 4)
    assert first.demographics[1] == (wvb_data.DEMOGRAPHIC_QUESTIONS["H_URBRURAL"], "Urban")
    bad = wvb_data.write(tmp_path / "bad")
    (bad / wvb.SAMPLES).unlink()
    with pytest.raises(ValueError, match=r"bad: missing probe/samples.tsv$"):
        wvb.load(PROBS, bad)
    bad = wvb_data.write(tmp_path / "bad")
    values = bad / wvb.VALUES
    lines = values.read_text().splitlines()
    cells = lines[1].split("\t")
    cells[1] = "7.0"  # the first participant answers Q1, on a 1..4 scale
    values.write_text("\n".join([lines[0], "\t".join(cells), *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=r"participant \d+, Q1: answer 7 is outside"):
        wvb.load(PROBS, bad)


def test_option_probabilities_end_to_end(chat_model, data, tmp_path, capsys):
    out = tmp_path / "probs"
    argv = ["eval", "run", "worldvaluesbench::probe", "--model", str(chat_model),
            "--data", str(data), "--out", str(out), "--json"]  # fmt: skip
    code, text, _ = run_cli(argv, capsys)
    result = json.loads(text)
    assert code == 0 and result["instances"] == 48 and result["kind"] == "worldvaluesbench"
    assert result["harness"]["chat_template"] is True
    assert result["harness"]["context"]["over_length"] == 0
    assert set(result["breakdown"]["questions"]) == {"Q1", "Q57", "Q122"}
    assert len(result["breakdown"]["groups"]) == 24
    requests = [json.loads(x) for x in (out / "requests.jsonl").read_text().splitlines()]
    assert requests[0]["context"].startswith("<|im_start|>user\nPerson X provided")
    assert requests[0]["context"].endswith("<|im_start|>assistant\nScore:")
    assert requests[0]["continuations"] == [" 1", " 2", " 3", " 4"]
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(len(r["choices"]) == r["scale"][1] - r["scale"][0] + 1 for r in rows)
    # The headline, recomputed from the per-question distances of the breakdown.
    below = [d < 0.2 for d in result["breakdown"]["questions"].values()]
    assert result["primary"] == sum(below) / 3

    code, text, _ = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text
    lines = (out / "predictions.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["choices"][0]["loglik"] += 5.0
    lines[0] = json.dumps(row)
    (out / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    code, text, _ = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 1 and "blake3 differs" in text and "metric mean_w1" in text


def test_sampled_generations_end_to_end(chat_model, data, tmp_path, capsys):
    out = tmp_path / "sampled"
    argv = ["eval", "run", "worldvaluesbench:cot::probe", "--model", str(chat_model),
            "--data", str(data), "--out", str(out),
            "--limit", "6", "--max-gen-toks", "8"]  # fmt: skip
    code, _, _ = run_cli(argv, capsys)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["samples"]) == SAMPLED.n_samples for r in rows)
    assert len({s for r in rows for s in r["samples"]}) > 6  # sampled, not greedy copies
    assert result["harness"]["max_gen_toks"] == 8
    assert (
        '"answer as a score"'
        in json.loads((out / "requests.jsonl").read_text().split("\n")[0])["context"]
    )
    code, text, _ = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text


def test_score_upstream_format(data, tmp_path, capsys):
    items, _ = wvb.load(SAMPLED, data)
    perfect = tmp_path / "perfect.tsv"
    perfect.write_text(
        "QUESTION_ID\tPARTICIPANT_ID\tSCORE\n"
        + "".join(f"{i.question_id}\t{i.participant}\t{i.human}\n" for i in items)
    )
    argv = ["eval", "score", "worldvaluesbench:cot::probe", "--predictions", str(perfect),
            "--data", str(data), "--out", str(tmp_path / "r"), "--json"]  # fmt: skip
    code, text, _ = run_cli(argv, capsys)
    result = json.loads(text)
    assert code == 0 and result["primary"] == 1.0 and result["metrics"]["mean_w1"] == 0.0
    code, text, _ = run_cli(["eval", "recompute", str(tmp_path / "r")], capsys)
    assert code == 0
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("QUESTION_ID,PARTICIPANT_ID,SCORE\nQ1,1,3\n")
    argv[4] = str(unknown)
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "unknown.csv:2" in err
