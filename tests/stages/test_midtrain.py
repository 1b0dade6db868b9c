"""midtrain: the pretrain checkpoint annealed on a mix of the tokenize artifact's sources.

On the micro tokenize artifact (sources `world` and `midtrain`: the world's texts, then the
rendered mid-training conversations) and a random tiny OLMo 2 as the pretrain checkpoint."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reprolm.recipe import validate_stage_config
from stages.common import checkpoints
from stages.common.job import JobContext
from stages.common.training import TrainingInputError
from stages.midtrain.mix import quotas
from tests.stages.micro import micro_config, run_stage, save_random_tiny_model

MIX = {"world": 0.75, "midtrain": 0.25}
STEPS, BATCH, PEAK = 6, 4, 0.01


def midtrain_config(**overrides) -> dict:
    config = {
        "mix": MIX,
        "steps": STEPS,
        "batch_size": BATCH,
        "learning_rate": PEAK,
        "logging_steps": 1,
        "seq_len": 64,  # the micro tokenize.seq_len (the plan copies pretrain.seq_len)
        "seed": 7,
        "threads": 1,
        **overrides,
    }
    return validate_stage_config("midtrain", config)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, tokenize_artifact) -> Path:
    root = tmp_path_factory.mktemp("pretrained")
    save_random_tiny_model(Path(tokenize_artifact), root / "model")
    return root


@pytest.fixture(scope="module")
def inputs(pretrained, tokenize_artifact, curate_artifact) -> dict[str, Path]:
    return {
        "model": pretrained,
        "tokenize": Path(tokenize_artifact),
        "curate": Path(curate_artifact),
    }


@pytest.fixture(scope="module")
def annealed(tmp_path_factory, inputs) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("midtrain") / "artifact"
    return out, run_stage("midtrain", midtrain_config(), inputs, out)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_the_payload_is_a_checkpoint_with_its_mix(annealed):
    root, metrics = annealed
    names = set(files(root))
    assert {"model/model.safetensors", "model/config.json", "model/tokenizer.json"} <= names
    assert {"training/log_history.json", "training/summary.json", "mix/mix.json"} <= names
    assert "mix/samples.npy" in names
    assert metrics["steps"] == STEPS and metrics["tokens_seen"] == STEPS * BATCH * 64
    assert not (root.parent / "artifact.trainer").exists()


def test_the_learning_rate_decays_linearly_to_zero(annealed):
    root, metrics = annealed
    history = json.loads((root / "training/log_history.json").read_text())
    rates = [entry["learning_rate"] for entry in history if "learning_rate" in entry]
    # Step s (1..N) uses peak x (N - s + 1) / N; after the last step the rate is 0.
    assert rates == pytest.approx([PEAK * (STEPS - s) / STEPS for s in range(STEPS)], abs=1e-12)
    assert metrics["final_learning_rate"] == 0.0


def test_the_windows_come_from_the_mix_in_its_ratio(annealed, tokenize_artifact):
    from transformers import AutoTokenizer

    root, metrics = annealed
    samples = np.load(root / "mix/samples.npy")
    assert samples.shape == (STEPS * BATCH, 3)
    sources = sorted(MIX)  # numbered in name order: midtrain 0, world 1
    counts = {name: int((samples[:, 0] == number).sum()) for number, name in enumerate(sources)}
    assert counts == {"world": 18, "midtrain": 6} == quotas(MIX, STEPS * BATCH)
    assert metrics["windows.world"] == 18 and metrics["windows.midtrain"] == 6
    record = json.loads((root / "mix/mix.json").read_text())
    assert record["sources"]["midtrain"]["windows"] == 6
    # Each window lies in its source's tokens: the world's texts come first in the stream, the
    # rendered conversations after them (checked on positions and on the decoded text).
    index = json.loads((Path(tokenize_artifact) / "shards/index.json").read_text())
    starts = np.cumsum([0] + [f["tokens"] for f in index["files"]])
    world_tokens = index["sources"]["world"]["tokens"]
    tokenizer = AutoTokenizer.from_pretrained(Path(tokenize_artifact) / "tokenizer")
    shards = [np.fromfile(Path(tokenize_artifact) / f["path"], dtype="<u2") for f in index["files"]]
    for number, part, offset in samples:
        position = starts[part] + offset
        text = tokenizer.decode(shards[part][offset : offset + 64])
        if sources[number] == "world":
            assert position + 64 <= world_tokens and "<|im_start|>" not in text
        else:
            assert position >= world_tokens and "<|im_start|>" in text


def test_the_anneal_changes_the_pretrain_weights(annealed, pretrained):
    import torch
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(pretrained / "model").state_dict()
    after = AutoModelForCausalLM.from_pretrained(annealed[0] / "model").state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_bitwise_deterministic(annealed, inputs, tmp_path):
    run_stage("midtrain", midtrain_config(), inputs, tmp_path / "again")
    assert files(tmp_path / "again") == files(annealed[0])


def test_resume_after_losing_the_last_checkpoint_is_bitwise(annealed, inputs, tmp_path):
    """Checkpoints every 2 steps (logging every step); the newest one deleted as a kill while
    saving it would leave it; the rerun resumes from step 2 to the same bytes."""
    store = tmp_path / "checkpoints"

    def context() -> JobContext:
        return JobContext(checkpoint_dir=store, checkpoint_every=2, checkpoint_keep=10)

    first = context()
    run_stage("midtrain", midtrain_config(), inputs, tmp_path / "first", first)
    saved = [step for step, _ in checkpoints.checkpoints(store)]
    assert saved == [2, 4], saved
    shutil.rmtree(store / "checkpoint-4")
    resumed = context()
    run_stage("midtrain", midtrain_config(), inputs, tmp_path / "resumed", resumed)
    assert resumed.resumed_step == 2
    assert files(tmp_path / "resumed") == files(tmp_path / "first") == files(annealed[0])


def test_a_source_the_artifact_lacks_is_named_with_the_sources_there(inputs, tmp_path):
    config = midtrain_config(mix={"world": 1.0, "web": 1.0})
    with pytest.raises(TrainingInputError, match=r"midtrain\.mix\.web: no such source") as caught:
        run_stage("midtrain", config, inputs, tmp_path / "out")
    assert "midtrain, world" in str(caught.value)


def test_a_model_of_another_tokenizer_is_refused(inputs, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(inputs["model"], other)
    path = other / "model" / "tokenizer.json"
    tokenizer = json.loads(path.read_text())
    tokenizer["model"]["vocab"]["zzz-extra"] = len(tokenizer["model"]["vocab"]) + 100
    path.write_text(json.dumps(tokenizer))
    with pytest.raises(TrainingInputError, match="is not the tokenize input's"):
        run_stage("midtrain", midtrain_config(), {**inputs, "model": other}, tmp_path / "out")


def test_quotas_round_by_largest_remainder():
    assert quotas({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert quotas({"a": 0.5, "b": 0.5}, 7) == {"a": 4, "b": 3}
    assert quotas({"a": 2, "b": 0}, 5) == {"a": 5, "b": 0}


def test_recorded_source_runs_locate_sources_even_where_documents_hold_eos():
    """tokenize's files[i].sources give each run's token range directly: a document holding eos
    (books' first) is no problem; runs that do not add up to the part are refused."""
    from stages.midtrain.mix import recorded_segments

    # Documents: web [5,5,0] [6,0] | books [7,0,7,0] web [8,0] | midtrain [9,0,9,0]
    index = {
        "eos_token_id": 0,
        "files": [
            {"path": "shards/part-00000.npy", "tokens": 5, "documents": 2,
             "sources": [{"source": "web", "documents": 2, "tokens": 5}]},
            {"path": "shards/part-00001.npy", "tokens": 6, "documents": 2,
             "sources": [{"source": "books", "documents": 1, "tokens": 4},
                         {"source": "web", "documents": 1, "tokens": 2}]},
            {"path": "shards/part-00002.npy", "tokens": 4, "documents": 1,
             "sources": [{"source": "midtrain", "documents": 1, "tokens": 4}]},
        ],
        "sources": {
            "web": {"documents": 3, "tokens": 7},
            "books": {"documents": 1, "tokens": 4},
            "midtrain": {"documents": 1, "tokens": 4},
        },
    }  # fmt: skip
    assert recorded_segments(index) == {
        "web": [(0, 0, 5), (1, 4, 6)],
        "books": [(1, 0, 4)],
        "midtrain": [(2, 0, 4)],
    }
    broken = copy.deepcopy(index)
    broken["files"][1]["sources"][1]["tokens"] = 3
    with pytest.raises(
        TrainingInputError, match=r"part-00001\.npy: its sources hold 2 documents"
    ) as caught:
        recorded_segments(broken)
    assert "shards/index.json" in str(caught.value)
    assert "rerun the tokenize stage" in str(caught.value)
    broken = copy.deepcopy(index)
    broken["sources"]["web"]["documents"] = 4
    with pytest.raises(TrainingInputError, match="rerun the tokenize stage"):
        recorded_segments(broken)
    broken = copy.deepcopy(index)
    del broken["files"][2]["sources"]
    with pytest.raises(TrainingInputError, match=r"part-00002\.npy has no sources"):
        recorded_segments(broken)
    for entry in index["files"]:
        del entry["sources"]
    assert recorded_segments(index) is None  # an older artifact: the caller derives them


def test_without_recorded_runs_sources_are_derived_in_stream_order_and_split_at_eos(tmp_path):
    """The fallback for tokenize artifacts without files[i].sources: two pretraining sources
    interleaved in curate's rows (read for their order), then the conversations; a part where
    the source changes is split after each document's eos."""
    from stages.midtrain.mix import document_runs, source_segments, windows

    data = tmp_path / "data"
    data.mkdir()
    rows = [("web", 1), ("web", 2), ("books", 3), ("web", 4)]
    (data / "pretrain.jsonl").write_text(
        "".join(json.dumps({"id": f"d{i}", "text": "x", "source": s}) + "\n" for s, i in rows)
    )
    eos = 0
    # Documents (eos-terminated): web [5,5,0] [6,0] | books [7,7,7,0] web [8,0] | midtrain [9,9,0]
    parts = [np.array([5, 5, 0, 6, 0]), np.array([7, 7, 7, 0, 8, 0]), np.array([9, 9, 0])]
    index = {
        "eos_token_id": eos,
        "files": [
            {"path": "shards/part-00000.npy", "tokens": 5, "documents": 2},
            {"path": "shards/part-00001.npy", "tokens": 6, "documents": 2},
            {"path": "shards/part-00002.npy", "tokens": 3, "documents": 1},
        ],
        "sources": {
            "web": {"documents": 3, "tokens": 7},
            "books": {"documents": 1, "tokens": 4},
            "midtrain": {"documents": 1, "tokens": 3},
        },
    }
    runs = document_runs(index, tmp_path)
    assert runs == [("web", 2), ("books", 1), ("web", 1), ("midtrain", 1)]
    segments = source_segments(parts, index, runs)
    assert segments == {
        "web": [(0, 0, 5), (1, 4, 6)],
        "books": [(1, 0, 4)],
        "midtrain": [(2, 0, 3)],
    }
    web = windows(segments["web"], 2)  # the tail of each segment is dropped
    assert web.parts.tolist() == [0, 0, 1] and web.offsets.tolist() == [0, 2, 4]
    # A document that holds eos itself makes the split ambiguous: refused, naming the part.
    parts[1] = np.array([7, 0, 7, 0, 8, 0])
    with pytest.raises(TrainingInputError, match=r"part-00001\.npy holds 3 eos tokens for 2"):
        source_segments(parts, index, runs)
    index["sources"]["books"]["documents"] = 2  # not the curate input tokenize read
    with pytest.raises(TrainingInputError, match="pass the curate artifact the tokenize job read"):
        document_runs(index, tmp_path)


@pytest.fixture(scope="module")
def eos_tokenize(tmp_path_factory, tokenize_artifact, curate_artifact) -> Path:
    """A tokenize artifact whose mid-training conversations hold eos: the micro tokenizer given
    with a chat template that ends turns with <|endoftext|> (as OLMo 2's does)."""
    from transformers import AutoTokenizer

    from stages.tokenize.bpe import CHAT_TEMPLATE

    where = tmp_path_factory.mktemp("eos")
    tokenizer = AutoTokenizer.from_pretrained(Path(tokenize_artifact) / "tokenizer")
    tokenizer.chat_template = CHAT_TEMPLATE.replace("<|im_end|>", "<|endoftext|>")
    tokenizer.save_pretrained(where / "tokenizer")
    config = micro_config("tokenize") | {"tokenizer": {"path": str(where / "tokenizer")}}
    run_stage("tokenize", config, {"curate": Path(curate_artifact)}, where / "artifact")
    return where / "artifact"


def test_a_mix_over_documents_holding_eos_uses_the_recorded_runs(eos_tokenize, inputs, tmp_path):
    index = json.loads((eos_tokenize / "shards/index.json").read_text())
    eos = index["eos_token_id"]
    parts = [np.fromfile(eos_tokenize / f["path"], dtype="<u2") for f in index["files"]]
    # Where the source changes, a part holds more eos tokens than documents.
    mixed = [i for i, f in enumerate(index["files"]) if len(f["sources"]) > 1]
    assert mixed and any(
        int((parts[i] == eos).sum()) > index["files"][i]["documents"] for i in mixed
    )
    root = tmp_path / "out"
    run_stage("midtrain", midtrain_config(), {**inputs, "tokenize": eos_tokenize}, root)
    samples = np.load(root / "mix/samples.npy")
    sources = sorted(MIX)
    assert {sources[n]: int((samples[:, 0] == n).sum()) for n in range(2)} == quotas(MIX, 24)
    # Each window lies in its source's tokens (the world's come first in the stream).
    starts = np.cumsum([0] + [f["tokens"] for f in index["files"]])
    world_tokens = index["sources"]["world"]["tokens"]
    im_start = 2  # <|im_start|>: only the rendered conversations hold it
    for number, part, offset in samples:
        position = starts[part] + offset
        if sources[number] == "world":
            assert (
                position + 64 <= world_tokens and im_start not in parts[part][offset : offset + 64]
            )
        else:
            assert position >= world_tokens
    # The same artifact without files[i].sources (as written before the field existed) takes the
    # fallback, which cannot split a part at eos when a document holds eos: refused.
    old = tmp_path / "old"
    shutil.copytree(eos_tokenize, old)
    for entry in index["files"]:
        del entry["sources"]
    (old / "shards/index.json").write_text(json.dumps(index))
    with pytest.raises(TrainingInputError, match=r"part-\d+\.npy holds \d+ eos tokens for \d+"):
        run_stage("midtrain", midtrain_config(), {**inputs, "tokenize": old}, tmp_path / "o")
