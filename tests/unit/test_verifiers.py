"""The verifier registry shared by RLVR rewards and evaluation metrics."""

import pytest

from evals.verifiers import VERIFIERS, extract_answer, get_verifier, register


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("7 + 5 = 12. The answer is 12.", "12"),
        ("So the answer is 1,234.", "1234"),
        ("the answer is: $18", "18"),
        ("I think 3, no 4", "4"),
        ("The answer is 12 (not 13)", "12"),
        ("no number here", None),
        ("-3 is it", "-3"),
        ("2.50", "2.5"),
        ("12.0", "12"),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


def test_numeric_answer_is_exact():
    verify = get_verifier("numeric_answer")
    assert verify("The answer is 12.", "12") == 1.0
    assert verify("The answer is 13.", "12") == 0.0
    assert verify("", "12") == 0.0


def test_format_verifiers():
    assert get_verifier("lowercase")("a cat sat", "") == 1.0
    assert get_verifier("lowercase")("A cat sat", "") == 0.0
    assert get_verifier("lowercase")("123", "") == 0.0
    assert get_verifier("max_words")("one two", "2") == 1.0
    assert get_verifier("max_words")("one two three", "2") == 0.0
    assert get_verifier("max_words")("", "2") == 0.0


def test_registry_refuses_duplicates_and_names_known_verifiers():
    with pytest.raises(ValueError, match="twice"):
        register("numeric_answer")(lambda response, truth: 0.0)
    with pytest.raises(KeyError, match=r"known verifiers: .*numeric_answer"):
        get_verifier("nope")
    assert {"numeric_answer", "lowercase", "max_words"} <= set(VERIFIERS)


def test_gsm8k_tulu_reward_equals_the_tulu_eval_rule_row_by_row():
    """The RLVR reward of a Tulu 3 recipe is gsm8k:cot::tulu's rule on every varied response;
    numeric_answer stays the earlier rule (gsm8k:cot::answer_is)."""
    import json
    from pathlib import Path

    path = Path(__file__).parents[1] / "evals" / "data" / "gsm8k_varied_responses.jsonl"
    cases = [json.loads(line) for line in path.open()]
    tulu, numeric = get_verifier("gsm8k_tulu"), get_verifier("numeric_answer")
    assert [tulu(c["response"], c["gold"]) for c in cases] == [c["tulu"] for c in cases]
    assert [numeric(c["response"], c["gold"]) for c in cases] == [c["answer_is"] for c in cases]
    assert tulu("So the answer is 12.0.", "12") == 0.0 and numeric("So the answer is 12.0.", "12")


def test_plan_refuses_an_unregistered_dataset_verifier():
    from reprolm.recipe import RecipeError
    from reprolm.sources import check_verifiers

    entry = {"name": "mix", "dataset_verifiers": {"gsm8k": "gsm8k_tulu"}}
    check_verifiers({"rlvr": [entry]})
    typo = dict(entry, dataset_verifiers={"gsm8k": "gsm8k_tuluu"})
    with pytest.raises(RecipeError, match=r"dataset_verifiers.gsm8k 'gsm8k_tuluu' is not regi"):
        check_verifiers({"rlvr": [typo]})
