"""AlpacaEval 2 (``alpaca_eval_v2::tulu``): win rate and length-controlled win rate from saved
pairwise judgments (the judge is the user's: a local judge model run elsewhere, or any judge
whose annotations are saved in AlpacaEval's schema).

A judgments file is JSONL in alpaca_eval's annotation schema, one row per instruction:
``instruction``, ``output_1`` (the baseline's output), ``output_2`` (the model's output),
``preference`` (1: the baseline is preferred, 2: the model, 0 or 1.5: a draw; a weighted judge's
soft value in [1, 2] is kept as is) and, optionally, ``instruction_difficulty`` (alpaca_eval's
per-instruction difficulty, distributed with alpaca_eval as ``instruction_difficulty.csv``).

The length-controlled GLM follows alpaca_eval ``src/alpaca_eval/metrics/glm_winrate.py``
(``GLM_INFO["length_controlled_v1"]``; Dubois et al. 2024, arXiv:2404.04475):

* target: ``p = preference - 1`` in [0, 1] (a draw is 0.5), the probability the model wins;
* features (no intercept): ``tanh(std_delta_len)`` with ``delta_len = len(output_1) -
  len(output_2)`` in characters divided by its sample standard deviation (ddof 1, as pandas),
  ``instruction_difficulty``, and a constant 1 (``not_gamed_baseline``: the model's strength);
* fit: logistic regression on soft labels (each row once with label 1 weighted ``p`` and once
  with label 0 weighted ``1 - p``), L1 penalty, no intercept: minimise
  ``||w||_1 + C * sum_i CE(p_i, sigmoid(x_i . w))``, sklearn/liblinear's objective;
* LC win rate: ``100 * mean_i sigmoid(x_i . w)`` with ``std_delta_len`` set to 0 for every row
  (the counterfactual "same length as the baseline").

Deviations (docs/evals/tulu3.md): the reference picks ``C`` by 5-fold grouped CV
(``LogisticRegressionCV``) and regularises toward the baseline with alpaca_eval's gamed-model
annotations (``df_gamed.csv``, weight ``0.2 / 2``); here ``C`` is fixed at 100 (the reference's
value when CV is off) and no gamed annotations are added. Without ``instruction_difficulty`` on
any row the difficulty feature is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evals.families import Family, field_texts
from evals.rowschema import require
from evals.spec import TaskSpec

C = 100.0  # inverse L1 strength (fit_LogisticRegressionCV's C when n_splits is 0)
FEATURES = ("length", "instruction_difficulty", "model")  # tanh(std_delta_len), difficulty, 1


def target(preference: Any, where: str) -> float:
    """The probability the model (``output_2``) wins: ``preference - 1``, a draw (0) is 0.5."""
    if isinstance(preference, bool) or not isinstance(preference, (int, float)):
        raise ValueError(
            f"{where}: 'preference' is {preference!r}; expected alpaca_eval's 1 (baseline "
            "output_1 preferred), 2 (model output_2 preferred) or 0 (draw), or a value in [1, 2]"
        )
    value = float(preference)
    if value == 0.0:
        return 0.5
    if not 1.0 <= value <= 2.0:
        raise ValueError(f"{where}: 'preference' {value} is outside [1, 2] (and not 0, a draw)")
    return value - 1.0


def check_judgment(row: dict, where: str) -> None:
    """A judgments row has the instruction, both outputs and the preference."""
    require(row, ("instruction", "output_1", "output_2", "preference"), where, "judgment",
            "alpaca_eval annotation rows: instruction, output_1 = baseline, output_2 = model, "
            "preference")  # fmt: skip
    for key in ("output_1", "output_2"):
        if not isinstance(row[key], str):
            raise ValueError(f"{where}: {key!r} must be the output text (a string)")
    target(row["preference"], where)


def design(rows: list[dict], where: str = "judgments") -> tuple[np.ndarray, np.ndarray, list]:
    """(X with the length feature, soft targets p, feature names) of the GLM."""
    delta = np.array([len(r["output_1"]) - len(r["output_2"]) for r in rows], dtype=float)
    std = float(np.std(delta, ddof=1)) if len(rows) > 1 else 0.0
    length = np.tanh(delta / std) if std > 0 else np.zeros_like(delta)
    has = [("instruction_difficulty" in r) for r in rows]
    columns, names = [length], ["length"]
    if any(has):
        if not all(has):
            line = has.index(False) + 1
            raise ValueError(
                f"{where}:{line}: no 'instruction_difficulty' while other rows have one; give "
                "it on every row (alpaca_eval's instruction_difficulty.csv) or on none"
            )
        columns.append(np.array([float(r["instruction_difficulty"]) for r in rows]))
        names.append("instruction_difficulty")
    columns.append(np.ones(len(rows)))
    names.append("model")
    p = np.array([target(r["preference"], f"{where}:{i + 1}") for i, r in enumerate(rows)])
    return np.column_stack(columns), p, names


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def fit(x: np.ndarray, p: np.ndarray, c: float = C) -> np.ndarray:
    """Weights minimising ``||w||_1 + c * sum CE(p, sigmoid(x w))`` (L-BFGS-B on w = u - v)."""
    from scipy.optimize import minimize

    k = x.shape[1]

    def objective(z: np.ndarray) -> tuple[float, np.ndarray]:
        w = z[:k] - z[k:]
        s = x @ w
        loss = -np.sum(p * _log_sigmoid(s) + (1.0 - p) * _log_sigmoid(-s))
        grad_w = c * (x.T @ (1.0 / (1.0 + np.exp(-s)) - p))
        value = float(np.sum(z) + c * loss)
        return value, np.concatenate([1.0 + grad_w, 1.0 - grad_w])

    found = minimize(
        objective, np.zeros(2 * k), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * (2 * k),
        options={"maxiter": 10000, "ftol": 1e-15, "gtol": 1e-11},
    )  # fmt: skip
    return found.x[:k] - found.x[k:]


def win_rates(rows: list[dict]) -> dict[str, float]:
    """Raw and length-controlled win rates (percent), counts, the GLM weights."""
    if not rows:
        raise ValueError("no judgments to score")
    x, p, names = design(rows)
    weights = fit(x, p)
    zero_length = x.copy()
    zero_length[:, 0] = 0.0
    predicted = 1.0 / (1.0 + np.exp(-(zero_length @ weights)))
    out = {
        "length_controlled_winrate": float(100.0 * predicted.mean()),
        "win_rate": float(100.0 * p.mean()),
        "n_total": float(len(rows)),
        "n_wins": float(np.sum(p == 1.0)),
        "n_draws": float(np.sum(p == 0.5)),
        "avg_length": float(np.mean([len(r["output_2"]) for r in rows])),
    }
    for name, weight in zip(names, weights, strict=True):
        out[f"glm_weight_{name}"] = float(weight)
    return out


KEEP = ("instruction", "output_1", "output_2", "preference", "instruction_difficulty")


def score_rows(judgments: list[dict], where: str) -> list[dict]:
    """Checked judgment rows with the fields the metrics read (and the generators, if given)."""
    rows = []
    for number, row in enumerate(judgments, 1):
        check_judgment(row, f"{where}:{number}")
        kept = {k: row[k] for k in KEEP if k in row}
        for extra in ("generator_1", "generator_2"):
            if extra in row:
                kept[extra] = row[extra]
        rows.append(kept)
    return rows


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    return win_rates(rows)


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score a judgments JSONL (alpaca_eval annotation rows) produced by the user's judge."""
    from evals import results, sources

    data_rows = sources.read_jsonl(data) if data else []
    rows = score_rows(sources.read_jsonl(predictions), str(predictions))
    if data_rows:
        known = {r["instruction"] for r in data_rows}
        for number, row in enumerate(rows, 1):
            if row["instruction"] not in known:
                raise ValueError(
                    f"{predictions}:{number}: instruction not in the AlpacaEval set {data}"
                )
    return results.scored_result(
        spec, "alpaca_eval_v2", rows, predictions=predictions, data=data,
        data_rows=len(data_rows), out_dir=out_dir,
    )  # fmt: skip


texts = field_texts("instruction")  # alpaca_eval.json rows as JSONL


FAMILY = Family(kind="alpaca_eval_v2", metrics=recompute_metrics, score=score_file, texts=texts)

SPECS = [
    TaskSpec(
        task_id="alpaca_eval_v2::tulu",
        dataset="tatsu-lab/alpaca_eval:alpaca_eval",
        split="eval",  # 805 instructions; the baseline outputs are GPT-4 Turbo's (output_1)
        fewshot=None,
        prompt_format="alpaca_eval_instruction_as_user_turn",
        normalizations=("length_controlled_v1_fixed_c100",),
        primary_metric="length_controlled_winrate",
        version=1,
        sample_threshold=10**9,  # never subsampled
    )
]
