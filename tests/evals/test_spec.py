"""Task specs: OLMES ids, the registry, resolution against data, and the spec hash."""

from __future__ import annotations

import dataclasses

import pytest

from evals import sources
from evals.registry import SPECS, get_spec
from evals.spec import FewShotSet, parse_id, resolve, spec_hash
from tests.evals.conftest import ARC_CHALLENGE, ARC_EASY

REQUIRED = {
    "arc_easy:rc::olmes",
    "arc_easy:mc::olmes",
    "arc_challenge:rc::olmes",
    "arc_challenge:mc::olmes",
    "gsm8k:cot::tulu",
}


def hashed(spec, data=ARC_CHALLENGE) -> str:
    return spec_hash(resolve(spec, data, len(sources.read_jsonl(data))))


def test_registry_holds_the_olmes_ids():
    assert set(SPECS) >= REQUIRED
    assert parse_id("arc_challenge:mc::olmes") == ("arc_challenge", "mc", "olmes")
    spec = get_spec("arc_challenge:rc::olmes")
    assert spec.primary_metric == "acc_uncond" and spec.uncond_context == "Answer:"
    assert get_spec("arc_easy:rc::olmes").primary_metric == "acc_per_char"
    assert get_spec("arc_easy:mc::olmes").primary_metric == "acc_raw"
    assert spec.fewshot.n == 5 and get_spec("gsm8k:cot::tulu").fewshot.n == 8


def test_unknown_id_lists_known_ids():
    with pytest.raises(KeyError) as error:
        get_spec("arc_easy:rc::nope")
    message = error.value.args[0]
    assert "arc_easy:rc::nope" in message
    assert all(task_id in message for task_id in REQUIRED)
    with pytest.raises(ValueError, match="task:format::regime"):
        parse_id("arc_easy")


def test_hash_is_stable_and_covers_data():
    spec = get_spec("arc_easy:rc::olmes")
    assert hashed(spec) == hashed(spec)
    assert hashed(spec, ARC_EASY) != hashed(spec, ARC_CHALLENGE)  # dataset digest is in it


def test_changing_fewshot_set_or_normalization_changes_the_hash():
    spec = get_spec("arc_easy:rc::olmes")
    base = hashed(spec)
    fewer = dataclasses.replace(spec, fewshot=dataclasses.replace(spec.fewshot, n=4))
    other_pool = dataclasses.replace(
        spec, fewshot=FewShotSet("olmes_arc_challenge_fewshot.jsonl", 5, spec.fewshot.source)
    )
    norms = dataclasses.replace(spec, normalizations=("raw", "per_token", "per_char"))
    variants = {base, hashed(fewer), hashed(other_pool), hashed(norms)}
    assert len(variants) == 4


def test_fewshot_file_bytes_are_in_the_hash(tmp_path, monkeypatch):
    spec = get_spec("arc_easy:rc::olmes")
    base = hashed(spec)
    copy = tmp_path / spec.fewshot.file
    copy.write_bytes(sources.bundled(spec.fewshot.file).read_bytes() + b"\n")
    monkeypatch.setattr(sources, "DATA_DIR", tmp_path)
    assert hashed(spec) != base


def test_pinned_dataset_digest_is_enforced():
    spec = dataclasses.replace(get_spec("arc_easy:rc::olmes"), dataset_digest="0" * 64)
    with pytest.raises(ValueError, match="differs from the digest pinned"):
        hashed(spec)


def test_sampling_follows_olmes():
    assert sources.sample_indices(1500, threshold=1500, size=1000, seed=1) == list(range(1500))
    drawn = sources.sample_indices(2000, threshold=1500, size=1000, seed=1)
    assert len(set(drawn)) == 1000 and drawn == sorted(drawn)
    assert drawn == sources.sample_indices(2000, threshold=1500, size=1000, seed=1)
    assert drawn != sources.sample_indices(2000, threshold=1500, size=1000, seed=2)
