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
