"""The data-order file (tokenize) and its use by pretrain: exact content, the checks at start,
and the data fingerprint that a resumed run must match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reprolm.hashing import MANIFEST_NAME, hash_payload
from stages.common import checkpoints
from stages.common.job import Input, JobContext
from stages.common.training import TrainingInputError
from stages.pretrain.data import read_index
from stages.pretrain.datafp import data_fingerprint
from stages.tokenize.order import global_indices, window_count, write_order
from tests.stages.test_training import payload_files, run_stage, stage_config


def test_order_file_exact_content(tmp_path) -> None:
    assert window_count([130, 64, 63, 0], 64) == 3  # 2 + 1 + 0 + 0: tails dropped
    entry = write_order(tmp_path, [130, 64, 63], seq_len=64, epochs=2, seed=7)
    assert entry == {
        "path": "order/global_indices.npy",
        "seq_len": 64,
        "epochs": 2,
        "windows": 3,
        "dtype": "uint32",
    }
    saved = np.load(tmp_path / "order" / "global_indices.npy", allow_pickle=False)
    assert saved.dtype == np.dtype("<u4")
    expected = [
        *np.random.default_rng([7, 0]).permutation(3),
        *np.random.default_rng([7, 1]).permutation(3),
    ]
    assert saved.tolist() == [int(i) for i in expected]
    assert sorted(saved[:3].tolist()) == [0, 1, 2] and sorted(saved[3:].tolist()) == [0, 1, 2]
    assert global_indices(0, 3, seed=1).size == 0


def test_micro_order_file(tokenize_artifact) -> None:
    index = read_index(Path(tokenize_artifact))
    tokens = [f["tokens"] for f in index["files"]]
    windows = sum(t // 64 for t in tokens)
    assert index["order"] == {
        "path": "order/global_indices.npy",
        "seq_len": 64,
        "epochs": 10,
        "windows": windows,
        "dtype": "uint32",
    }
    saved = np.load(Path(tokenize_artifact) / index["order"]["path"])
    assert saved.tolist() == global_indices(windows, 10, seed=0).tolist()


def test_pretrain_refuses_a_short_or_mismatched_order(tmp_path, tokenize_artifact) -> None:
    inputs = {"tokenize": Path(tokenize_artifact)}
    windows = read_index(Path(tokenize_artifact))["order"]["windows"]
    too_long = stage_config("pretrain", steps=10 * windows // 4 + 1)  # batch_size 4
    with pytest.raises(TrainingInputError, match=r"steps x batch_size = .*raise tokenize\.epochs"):
        run_stage("pretrain", too_long, inputs, tmp_path / "a")
    other = stage_config("pretrain", seq_len=32)
    with pytest.raises(TrainingInputError, match=r"pretrain\.seq_len=32 .*tokenize\.seq_len"):
        run_stage("pretrain", other, inputs, tmp_path / "b")


def test_data_fingerprint_from_manifest_or_content(tmp_path, tokenize_artifact) -> None:
    copy = tmp_path / "tokenize"
    shutil.copytree(tokenize_artifact, copy)
    index = read_index(copy)
    hashed = data_fingerprint(Input(copy), index)  # no manifest: every file hashed
    files = hash_payload(copy)
    assert data_fingerprint(Input(copy, {"files": files}), index) == hashed
    changed = json.loads(json.dumps(files))
    changed["order/global_indices.npy"]["hash"] = "0" * 64
    assert data_fingerprint(Input(copy, {"files": changed}), index) != hashed
    shard = copy / index["files"][1]["path"]
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(TrainingInputError, match=r"bytes on disk, the tokenize artifact's manif"):
        data_fingerprint(Input(copy, {"files": files}), index)


def test_resume_refused_when_the_shards_changed(tmp_path, tokenize_artifact) -> None:
    copy = tmp_path / "tokenize"
    shutil.copytree(tokenize_artifact, copy)
    config = stage_config("pretrain", steps=6, logging_steps=2)
    store = tmp_path / "checkpoints"

    def context() -> JobContext:
        return JobContext(checkpoint_dir=store, checkpoint_every=2, checkpoint_keep=10)

    run_stage("pretrain", config, {"tokenize": copy}, tmp_path / "first", context())
    assert [step for step, _ in checkpoints.checkpoints(store)] == [2, 4]
    shutil.rmtree(store / "checkpoint-4")
    unchanged = context()
    run_stage("pretrain", config, {"tokenize": copy}, tmp_path / "resumed", unchanged)
    assert unchanged.resumed_step == 2
    assert payload_files(tmp_path / "resumed") == payload_files(tmp_path / "first")
    # Same sizes, other content: two tokens of a shard swapped.
    shard = copy / read_index(copy)["files"][0]["path"]
    ids = np.fromfile(shard, dtype="<u2")
    ids[[0, 1]] = ids[[1, 0]]
    ids.tofile(shard)
    with pytest.raises(checkpoints.ResumeDataError, match=r"trained on other data"):
        run_stage("pretrain", config, {"tokenize": copy}, tmp_path / "changed", context())
    assert not (tmp_path / "changed" / "model").exists()
    assert MANIFEST_NAME not in {p.name for p in copy.iterdir()}
