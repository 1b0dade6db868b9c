"""AlpacaEval 2: raw and length-controlled win rates from a saved judgments file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evals import alpaca_eval
from evals.registry import get_spec
from evals.results import recompute

FIXTURE = Path(__file__).parents[1] / "fixtures" / "alpaca_eval" / "judgments.jsonl"


def rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.open()]


def test_raw_win_rate_by_hand():
    metrics = alpaca_eval.win_rates(rows())
    # preferences 2, 1, 1, 2, 0 (draw), 2, 1, 1.5 -> p = 1, 0, 0, 1, .5, 1, 0, .5: 4 / 8
    assert metrics["win_rate"] == pytest.approx(50.0)
    assert metrics["n_wins"] == 3 and metrics["n_draws"] == 2 and metrics["n_total"] == 8


def test_lc_win_rate_equals_an_independent_sklearn_fit():
    sklearn = pytest.importorskip("sklearn.linear_model")
    data = rows()
    delta = np.array([len(r["output_1"]) - len(r["output_2"]) for r in data], float)
    std = delta.std(ddof=1)
    x = np.column_stack(
        [np.tanh(delta / std), [r["instruction_difficulty"] for r in data], np.ones(len(data))]
    )
    p = np.array([{0: 0.5}.get(r["preference"], r["preference"] - 1) for r in data], float)
    # alpaca_eval's soft-label trick: each row once as label 1 (weight p), once as 0 (1 - p)
    model = sklearn.LogisticRegression(
        l1_ratio=1.0, C=100, solver="liblinear", fit_intercept=False, tol=1e-12, max_iter=100000
    )
    model.fit(np.vstack([x, x]), np.r_[np.ones(8), np.zeros(8)], sample_weight=np.r_[p, 1 - p])
    x0 = x.copy()
    x0[:, 0] = 0.0
    expected = 100 * model.predict_proba(x0)[:, 1].mean()
    metrics = alpaca_eval.win_rates(data)
    assert metrics["length_controlled_winrate"] == pytest.approx(expected, abs=1e-3)
    assert metrics["glm_weight_length"] == pytest.approx(model.coef_[0][0], abs=1e-3)


def biased_judgments(model_extra: int, n: int = 120) -> list[dict]:
    """A judge that only likes length: P(model wins) = sigmoid(-2 tanh(delta_len / std)), with
    equal quality; the model's outputs are ``model_extra`` characters longer on average."""
    rng = np.random.default_rng(0)
    base = rng.integers(50, 400, n)
    model = np.maximum(1, base + model_extra + rng.integers(-150, 150, n))
    delta = base - model
    prob = 1 / (1 + np.exp(2 * np.tanh(delta / delta.std(ddof=1))))
    return [
        {"instruction": f"q{i}", "output_1": "b" * int(b), "output_2": "m" * int(m),
         "preference": 1 + float(q)}
        for i, (b, m, q) in enumerate(zip(base, model, prob, strict=True))
    ]  # fmt: skip


def test_length_bias_shows_in_raw_win_rate_and_is_removed_by_lc():
    verbose = alpaca_eval.win_rates(biased_judgments(model_extra=120))
    concise = alpaca_eval.win_rates(biased_judgments(model_extra=-120))
    assert verbose["win_rate"] > 70 and concise["win_rate"] < 30  # the judge's bias
    assert verbose["length_controlled_winrate"] == pytest.approx(50, abs=1.5)
    assert concise["length_controlled_winrate"] == pytest.approx(50, abs=1.5)
    assert verbose["glm_weight_length"] == pytest.approx(-2, abs=0.1)


def test_score_file_writes_a_result_that_recomputes(tmp_path):
    spec = get_spec("alpaca_eval_v2::tulu")
    result = alpaca_eval.score_file(spec, FIXTURE, None, tmp_path / "out")
    assert result["primary_metric"] == "length_controlled_winrate"
    assert result["metrics"]["win_rate"] == pytest.approx(50.0)
    assert recompute(tmp_path / "out")["problems"] == []


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"instruction": "q", "output_1": "a", "output_2": "b"}, r"lacks preference"),
        ({"instruction": "q", "output_1": "a", "output_2": "b", "preference": 3}, r"outside"),
        ({"instruction": "q", "output_1": "a", "output_2": "b", "preference": "2"}, r"expected"),
    ],
)
def test_bad_judgments_name_the_line(tmp_path, row, message):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=rf"j.jsonl:1: .*{message}"):
        alpaca_eval.score_file(get_spec("alpaca_eval_v2::tulu"), path, None, None)


def test_difficulty_on_some_rows_only_is_refused():
    data = rows()
    del data[3]["instruction_difficulty"]
    with pytest.raises(ValueError, match=r"judgments:4: no 'instruction_difficulty'"):
        alpaca_eval.win_rates(data)
