"""tokenize as a fan-out (tokenize.shards with a given tokenizer), stage by stage: encoded
shard batches gathered give, file for file, the payload the single job writes."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from reprolm.hashing import hash_payload
from reprolm.recipe import validate_stage_config
from stages.tokenize.documents import count_documents, documents, shard_range
from stages.tokenize.encoded import NpyStream
from stages.tokenize.gather import GatherError
from stages.tokenize.given import TokenizerError
from tests.stages.micro import micro_config, run_stage
from tests.stages.test_tokenize_given import save_big_tokenizer

# The tokenize keys a tokenize_shard job does not get (the stage table's config_omits).
OMITTED = (
    "vocab_size",
    "min_frequency",
    "model_max_length",
    "shard_tokens",
    "mask_checks",
    "seq_len",
    "epochs",
    "shards_per_job",
)


def tokenize_config(tokenizer: pathlib.Path, shards: int, **extra) -> dict:
    return micro_config("tokenize") | {"tokenizer": {"path": str(tokenizer)}, "shards": shards}


def run_sharded(config: dict, curate: pathlib.Path, batches, where: pathlib.Path) -> dict:
    """Run one tokenize_shard job per (first, last) batch; the gather's shard_* inputs."""
    inputs = {}
    for first, last in batches:
        shard = {k: v for k, v in config.items() if k not in OMITTED} | {
            "first": first,
            "last": last,
        }
        validate_stage_config("tokenize_shard", shard)  # the config the plan gives it
        out = where / f"shard-{first}"
        run_stage("tokenize_shard", shard, {"curate": curate}, out)
        inputs[f"shard_{first:05d}_{last:05d}"] = out
    return inputs


def index(artifact: pathlib.Path) -> dict:
    return json.loads((artifact / "shards" / "index.json").read_text("utf-8"))


def payload(artifact: pathlib.Path) -> dict:
    return {path: entry["hash"] for path, entry in hash_payload(artifact).items()}


@pytest.fixture(scope="module", params=["trained", "uint32"])
def given(request, tmp_path_factory, tokenize_artifact, curate_artifact) -> tuple:
    """(tokenizer directory, config overrides): the micro BPE (chat template: mid-training
    conversations rendered) and a 70,000-word vocabulary without one (uint32 shards)."""
    if request.param == "trained":
        return tokenize_artifact / "tokenizer", {}
    where = tmp_path_factory.mktemp("big")
    return save_big_tokenizer(curate_artifact, where / "big"), {"midtrain": False, "mask_checks": 0}


def test_four_shards_in_two_batches_gather_to_the_one_job_payload(
    tmp_path, given, curate_artifact
) -> None:
    tokenizer, extra = given
    one = tokenize_config(tokenizer, 1) | extra
    run_stage("tokenize", one, {"curate": curate_artifact}, tmp_path / "one")
    four = tokenize_config(tokenizer, 4) | extra
    inputs = run_sharded(four, curate_artifact, [(0, 2), (2, 4)], tmp_path)
    metrics = run_stage("tokenize", four, {"curate": curate_artifact, **inputs}, tmp_path / "four")
    expected = payload(tmp_path / "one")
    assert payload(tmp_path / "four") == expected
    # The parts' source runs (files[i].sources) are part of that: the same whatever the shards.
    files = [index(tmp_path / name)["files"] for name in ("one", "four")]
    assert files[0] == files[1] and all("sources" in entry for entry in files[1])
    if not extra:
        assert any(len(entry["sources"]) > 1 for entry in files[1])  # world, then midtrain
    assert len([p for p in expected if p.startswith("shards/part-")]) > 1  # parts cut alike
    assert "order/global_indices.npy" in expected
    if not extra:
        assert metrics["midtrain_documents"] > 0
    shard_files = sorted(p.name for p in (inputs["shard_00000_00002"] / "shards").iterdir())
    assert shard_files == ["shard-000000", "shard-000001"]


def test_the_gather_refuses_missing_shards(tmp_path, given, curate_artifact) -> None:
    tokenizer, extra = given
    four = tokenize_config(tokenizer, 4) | extra
    inputs = run_sharded(four, curate_artifact, [(0, 2)], tmp_path)
    with pytest.raises(GatherError, match=r"shards \[0, 1\] of \[4\], not 0..3 of 4"):
        run_stage("tokenize", four, {"curate": curate_artifact, **inputs}, tmp_path / "gather")


def test_a_trained_bpe_is_not_sharded(tmp_path, curate_artifact) -> None:
    config = micro_config("tokenize") | {"shards": 2}
    with pytest.raises(ValueError, match=r"tokenize.shards=2 needs tokenize.tokenizer"):
        run_stage("tokenize", config, {"curate": curate_artifact}, tmp_path / "out")


@pytest.mark.parametrize("chunks", [[], [[]], [[1, 2, 3], [], [70_000]]])
def test_npy_streams_load_as_the_arrays_appended(tmp_path, chunks) -> None:
    stream = NpyStream(tmp_path / "a.npy", np.dtype("<u4"))
    for chunk in chunks:
        stream.append(np.array(chunk, dtype=np.int64))
    stream.close()
    expected = np.array([v for chunk in chunks for v in chunk], dtype="<u4")
    loaded = np.load(tmp_path / "a.npy")
    assert loaded.dtype == expected.dtype and np.array_equal(loaded, expected)


def test_more_shards_than_documents_leave_empty_shards_and_the_same_payload(
    tmp_path, given, curate_artifact
) -> None:
    tokenizer, extra = given
    one = tokenize_config(tokenizer, 1) | extra
    run_stage("tokenize", one, {"curate": curate_artifact}, tmp_path / "one")
    config = tokenize_config(tokenizer, 2) | extra
    total = count_documents(config, curate_artifact / "data")
    many = tokenize_config(tokenizer, total + 7) | extra
    inputs = run_sharded(many, curate_artifact, [(0, 3), (3, total + 7)], tmp_path)
    run_stage("tokenize", many, {"curate": curate_artifact, **inputs}, tmp_path / "many")
    assert payload(tmp_path / "many") == payload(tmp_path / "one")
    assert index(tmp_path / "many")["files"] == index(tmp_path / "one")["files"]


def test_position_ranges_make_up_the_stream(tokenize_artifact, curate_artifact) -> None:
    from stages.tokenize.given import load_given

    tokenizer = load_given(tokenize_artifact / "tokenizer")
    config, data = micro_config("tokenize"), curate_artifact / "data"
    whole = list(documents(config, data, tokenizer))
    assert len(whole) == count_documents(config, data)
    assert {source for _, source in whole} >= {"world", "midtrain"}
    cuts = [shard_range(i, 5, len(whole)) for i in range(5)]
    parts = [list(documents(config, data, tokenizer, start, stop)) for start, stop in cuts]
    assert [doc for part in parts for doc in part] == whole


def test_a_changed_tokenizer_fails_the_shard_job(tmp_path, tokenize_artifact, curate_artifact):
    config = tokenize_config(tokenize_artifact / "tokenizer", 2)
    config["tokenizer"]["digest"] = "0" * 64
    shard = {k: v for k, v in config.items() if k not in OMITTED} | {"first": 0, "last": 1}
    with pytest.raises(TokenizerError, match="the tokenizer changed since the recipe pinned it"):
        run_stage("tokenize_shard", shard, {"curate": curate_artifact}, tmp_path / "shard")
