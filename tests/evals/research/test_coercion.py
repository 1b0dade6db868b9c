"""Complement coercion: region surprisal equals the model's own token surprisals, the paired
t-test equals scipy's, stimulus validation, table + deterministic plot, exact recompute."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import ttest_rel

from evals import coercion, results, sources
from evals.families import RunOptions, family_of
from evals.registry import get_spec

STIMULI = sources.bundled(coercion.STIMULI)


@pytest.fixture(scope="module")
def run(chat_model, chat_lm, tmp_path_factory):
    spec = get_spec("complement_coercion::surprisal")
    out = tmp_path_factory.mktemp("coercion") / "r"
    result = family_of(spec).evaluate(spec, chat_model, STIMULI, out, RunOptions(lm=chat_lm))
    return result, out


def test_bundled_stimuli_are_valid_and_paired():
    rows = sources.read_jsonl(STIMULI)
    names = coercion.check_stimuli(STIMULI, rows)
    assert names == ["subject", "verb", "det_noun", "post_noun", "rest"]
    assert len({r["item"] for r in rows}) >= 12 and len(rows) == 2 * len({r["item"] for r in rows})


def test_region_surprisal_equals_the_sum_of_token_surprisals_from_logits(run, chat_lm):
    import torch

    result, out = run
    rows = sources.read_jsonl(out / "predictions.jsonl")
    lm = chat_lm
    start_id = result["harness"]["sentence_start_id"]
    assert start_id == lm.prefix_token_id
    for row in rows[:6]:
        sentence = "".join(g["text"] for g in row["regions"])
        ids = [start_id, *lm.tok_encode(sentence, add_special_tokens=False)]
        with torch.no_grad():
            logits = lm.model(torch.tensor([ids])).logits[0].double()
        token_bits = -torch.log_softmax(logits, dim=-1) / math.log(2)
        prefix = ""
        for region in row["regions"]:
            lo = 1 + len(coercion.encode(lm, prefix))
            prefix += region["text"]
            hi = 1 + len(coercion.encode(lm, prefix))
            assert ids[:hi] == [start_id, *coercion.encode(lm, prefix)]  # a token boundary
            direct = sum(float(token_bits[i - 1, ids[i]]) for i in range(lo, hi))
            assert region["surprisal_bits"] == pytest.approx(direct, abs=1e-4)
            assert region["n_tokens"] == hi - lo


def test_t_test_equals_scipy_on_the_rows_and_recompute_is_exact(run):
    result, out = run
    rows = sources.read_jsonl(out / "predictions.jsonl")
    for name in ("verb", "post_noun"):
        by_item = {}
        for row in rows:
            region = next(g for g in row["regions"] if g["name"] == name)
            by_item.setdefault(row["item"], {})[row["condition"]] = region["surprisal_bits"]
        items = sorted(by_item, key=str)
        a = [by_item[i]["coercion"] for i in items]
        b = [by_item[i]["control"] for i in items]
        expected = ttest_rel(a, b)
        assert result["metrics"][f"t_{name}"] == pytest.approx(expected.statistic, rel=1e-9)
        assert result["metrics"][f"p_{name}"] == pytest.approx(expected.pvalue, rel=1e-9)
        diff = sum(x - y for x, y in zip(a, b, strict=True)) / len(a)
        assert result["metrics"][f"effect_{name}"] == pytest.approx(diff, rel=1e-9)
    assert result["primary_metric"] == "effect_post_noun"
    assert results.recompute(out)["problems"] == []
    rows[0]["regions"][3]["loglik"] -= 1.0
    (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = results.recompute(out)["problems"]
    assert any("effect_post_noun" in p for p in problems)


def test_table_and_plot_are_written_and_deterministic(run, tmp_path):
    result, out = run
    table = (out / coercion.TABLE).read_text()
    assert table.count("\n") == 2 + 5 and "| post_noun |" in table
    assert result["files"]["plot"]["blake3"] == sources.digest(out / coercion.PLOT)
    assert (out / coercion.PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = sources.read_jsonl(out / "predictions.jsonl")
    names = ["subject", "verb", "det_noun", "post_noun", "rest"]
    coercion.bar_plot(rows, names, tmp_path / "a.png")
    coercion.bar_plot(rows, names, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def _write(tmp_path, rows):
    path = tmp_path / "stimuli.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_stimuli_are_refused(tmp_path):
    rows = sources.read_jsonl(STIMULI)
    glued = json.loads(json.dumps(rows))
    glued[3]["regions"][2]["text"] = "the book"  # no leading space
    path = _write(tmp_path, glued)
    with pytest.raises(ValueError, match=r"stimuli.jsonl:4: region 'det_noun'.*leading space"):
        coercion.check_stimuli(path, glued)
    path = _write(tmp_path, rows[:-1])
    with pytest.raises(ValueError, match="one coercion and one control"):
        coercion.check_stimuli(path, rows[:-1])
