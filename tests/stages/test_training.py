"""The training stages pretrain → sft → dpo → rlvr (and midtrain, from pretrain) on the micro
data artifacts.

Each stage runs once per module (a chain of fixtures); the determinism tests run every stage a
second time into a fresh directory and compare every payload byte.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reprolm.recipe import validate_stage_config
from reprolm.stagetable import TRAINING_STAGES
from stages.common.job import JobContext, as_inputs
from stages.common.training import TrainingInputError, clean_log_history
from tests.stages.micro import MICRO_CONFIGS

# Micro configs: a model and step counts that keep each stage to a few seconds on one thread.
MICRO: dict[str, dict[str, Any]] = {
    "pretrain": {
        "model": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_layers": 1,
            "num_heads": 2,
            "num_kv_heads": 2,
            "max_position_embeddings": 64,
        },
        "seq_len": 64,
        "batch_size": 4,
        "steps": 12,
        "warmup_steps": 2,
        "logging_steps": 3,
    },
    # seq_len: set by the plan from pretrain.seq_len.
    "midtrain": {
        "mix": {"world": 0.5, "midtrain": 0.5},
        "seq_len": 64,
        "batch_size": 4,
        "steps": 4,
        "logging_steps": 2,
    },
    "sft": {"max_length": 96, "batch_size": 4, "steps": 8, "warmup_steps": 1, "logging_steps": 2},
    "dpo": {
        "max_length": 96,
        "batch_size": 4,
        "steps": 6,
        "warmup_steps": 1,
        "logging_steps": 2,
        "probe_size": 8,
        "learning_rate": 0.001,
    },
    "rlvr": {
        "num_generations": 4,
        "prompts_per_step": 2,
        "max_completion_length": 8,
        "steps": 3,
        "logging_steps": 1,
    },
}
UPSTREAM = {"midtrain": "pretrain", "sft": "pretrain", "dpo": "sft", "rlvr": "dpo"}
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle")


def stage_config(stage: str, **overrides: Any) -> dict[str, Any]:
    """The micro config of a stage, defaults filled and validated by the recipe schema."""
    config = {**json.loads(json.dumps(MICRO[stage])), "seed": 7, "threads": 1, **overrides}
    return validate_stage_config(stage, config)


def run_stage(
    stage: str,
    config: dict,
    inputs: dict[str, Path],
    output_dir: Path,
    context: JobContext | None = None,
) -> dict:
    """Seed and pin threads as reprolm.runner does, then call the stage's run()."""
    import importlib

    import torch

    random.seed(config["seed"])
    np.random.seed(config["seed"])
    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["threads"])
    output_dir.mkdir(parents=True)
    run = importlib.import_module(f"stages.{stage}.stage").run
    return run(config, as_inputs(inputs), output_dir, context or JobContext())


def stage_inputs(stage: str, artifacts: dict[str, Path], curate: Path) -> dict[str, Path]:
    if stage == "pretrain":
        return {"tokenize": artifacts["tokenize"]}
    if stage == "midtrain":
        return {"model": artifacts["pretrain"], "tokenize": artifacts["tokenize"], "curate": curate}
    return {"model": artifacts[UPSTREAM[stage]], "data": curate}


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tokenize_artifact, curate_artifact) -> dict[str, Any]:
    """Run the four stages once, each on the previous one's checkpoint."""
    root = tmp_path_factory.mktemp("training")
    artifacts: dict[str, Path] = {"tokenize": Path(tokenize_artifact)}
    metrics: dict[str, dict] = {}
    for stage in TRAINING_STAGES:
        out = root / stage
        inputs = stage_inputs(stage, artifacts, Path(curate_artifact))
        metrics[stage] = run_stage(stage, stage_config(stage), inputs, out)
        artifacts[stage] = out
    return {"artifacts": artifacts, "metrics": metrics, "curate": Path(curate_artifact)}


def payload_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def load_model(artifact: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(artifact / "model"))


# --- every stage -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_payload_is_a_self_contained_checkpoint(chain, stage):
    from transformers import AutoTokenizer

    root = chain["artifacts"][stage]
    files = payload_files(root)
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert f"model/{name}" in files
    assert {"training/log_history.json", "training/summary.json"} <= set(files)
    assert not [f for f in files if f.endswith(PICKLE_SUFFIXES)], "pickles in the payload"
    assert not (root.parent / f"{stage}.trainer").exists(), "trainer scratch dir left behind"
    for name, data in files.items():
        if name.endswith(".json"):
            text = data.decode("utf-8")
            assert str(root) not in text and "/tmp" not in text, f"{name} holds an absolute path"
    for name in ("training/log_history.json", "training/summary.json"):
        value = read_json(root / name)
        assert (root / name).read_text("utf-8") == json.dumps(
            value, sort_keys=True, indent=2
        ) + "\n"
    history = read_json(root / "training/log_history.json")
    assert history and all("step" in entry for entry in history)
    assert not [k for e in history for k in e if k.endswith(("_runtime", "_per_second"))]
    assert not [k for e in history for k in e if k == "step_time"]

    tokenizer = AutoTokenizer.from_pretrained(str(root / "model"))
    model = load_model(root)
    assert model.config.model_type == "olmo2"
    assert model.config.vocab_size == len(tokenizer)
    eos = [tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")]
    assert model.generation_config.eos_token_id == eos
    assert model.generation_config.pad_token_id == tokenizer.convert_tokens_to_ids("<|pad|>")
    assert tokenizer.eos_token == "<|endoftext|>"  # SFTTrainer's eos override is not saved
    assert read_json(root / "training/summary.json") == chain["metrics"][stage]


@pytest.mark.slow
@pytest.mark.parametrize("stage", TRAINING_STAGES[1:])
def test_post_training_changes_the_weights(chain, stage):
    import torch

    before = load_model(chain["artifacts"][UPSTREAM[stage]]).state_dict()
    after = load_model(chain["artifacts"][stage]).state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.slow
@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_bitwise_deterministic(chain, tmp_path, stage):
    inputs = stage_inputs(stage, chain["artifacts"], chain["curate"])
    metrics = run_stage(stage, stage_config(stage), inputs, tmp_path / stage)
    first, second = payload_files(chain["artifacts"][stage]), payload_files(tmp_path / stage)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
    assert metrics == chain["metrics"][stage]


@pytest.mark.slow
@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_progress_and_live_metrics_change_no_payload_byte(
    chain, tmp_path, monkeypatch, capfd, stage
):
    """The chain ran with progress lines (stderr is no terminal here); without the progress
    callback, and with a tqdm bar and a live MLflow sender (its server away), every payload byte
    is the same."""
    from transformers import TrainerCallback

    from reprolm.tracking import live
    from stages.common import trainprogress
    from tests.integration.mlflow_server import free_port

    inputs = stage_inputs(stage, chain["artifacts"], chain["curate"])
    callback = trainprogress.progress_callback
    monkeypatch.setattr(trainprogress, "progress_callback", lambda context: TrainerCallback())
    run_stage(stage, stage_config(stage), inputs, tmp_path / "without")
    monkeypatch.setattr(trainprogress, "progress_callback", callback)
    for name, value in {
        "REPROLM_PROGRESS": "bar", "REPROLM_MLFLOW": "on", "REPROLM_MLFLOW_LIVE_INTERVAL": "0.1",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    capfd.readouterr()
    context = JobContext(stage=stage, fingerprint="0" * 12)
    run_stage(stage, stage_config(stage), inputs, tmp_path / "bar", context)
    err = capfd.readouterr().err
    assert f"{stage}: " in err and "\r" in err, err[-2000:]  # the bar was drawn
    assert live.take_id() is not None, "the live sender ran"
    reference = payload_files(chain["artifacts"][stage])
    for variant in ("without", "bar"):
        files = payload_files(tmp_path / variant)
        assert files.keys() == reference.keys()
        assert [name for name in files if files[name] != reference[name]] == [], variant


def test_clean_log_history_drops_wall_clock_fields():
    history = [
        {"loss": 1.0, "step": 1, "step_time": 0.3},
        {"train_runtime": 2.0, "train_samples_per_second": 9.0, "train_loss": float("nan")},
    ]
    assert clean_log_history(history) == [{"loss": 1.0, "step": 1}, {"train_loss": None}]


# --- pretrain -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_pretrain_learns_and_reports(chain, tokenize_artifact):
    metrics = chain["metrics"]["pretrain"]
    assert metrics["last_loss"] < metrics["first_loss"]
    config = stage_config("pretrain")
    assert metrics["tokens_seen"] == config["steps"] * config["batch_size"] * config["seq_len"]
    model = load_model(chain["artifacts"]["pretrain"])
    assert metrics["parameters"] == sum(p.numel() for p in model.parameters())
    assert model.config.hidden_size == MICRO["pretrain"]["model"]["hidden_size"]
    assert model.config.num_hidden_layers == MICRO["pretrain"]["model"]["num_layers"]
    assert model.config.tie_word_embeddings is True
    index = read_json(Path(tokenize_artifact) / "shards" / "index.json")
    assert model.config.eos_token_id == index["eos_token_id"]


def test_pretrain_windows_follow_the_order_file(tokenize_artifact):
    """Sample i is window order[i] (numbered shard by shard), the order tokenize wrote."""
    from stages.pretrain.data import make_dataset, open_order, open_shards, window_starts

    shards = open_shards(Path(tokenize_artifact), 1 << 16)
    seq_len = 64  # the micro tokenize.seq_len
    order = open_order(Path(tokenize_artifact), shards, seq_len, samples=1)
    starts = window_starts(shards, seq_len)
    index = read_json(Path(tokenize_artifact) / "shards" / "index.json")
    assert index["order"]["windows"] == len(starts) and len(order) == 10 * len(starts)
    dataset, windows = make_dataset(shards, seq_len, order)
    assert windows == len(starts)
    served = [item["input_ids"].numpy() for item in dataset]
    assert len(served) == len(order)
    for position, window in enumerate(order):
        shard, offset = starts[window]
        assert (served[position] == shards[shard][offset : offset + seq_len]).all()
    # The order pretrain drew itself before the file: a seeded permutation per epoch.
    seed = MICRO_CONFIGS["tokenize"]["seed"]
    for epoch in range(2):
        permutation = np.random.default_rng([seed, epoch]).permutation(windows)
        assert (order[epoch * windows : (epoch + 1) * windows] == permutation).all()
    first = next(iter(dataset))
    assert (first["labels"] == first["input_ids"]).all()


def test_pretrain_rejects_bad_inputs(tmp_path, tokenize_artifact):
    with pytest.raises(TrainingInputError, match=r"tokenizer\.json not found"):
        run_stage("pretrain", stage_config("pretrain"), {"tokenize": tmp_path}, tmp_path / "a")
    config = stage_config("pretrain", seq_len=128)  # model.max_position_embeddings is 64
    with pytest.raises(TrainingInputError, match=r"pretrain\.seq_len=128 exceeds"):
        run_stage("pretrain", config, {"tokenize": Path(tokenize_artifact)}, tmp_path / "b")


def test_pretrain_rejects_a_truncated_shard(tmp_path, tokenize_artifact):
    import shutil

    from stages.pretrain.data import open_shards

    copy = tmp_path / "tokenize"
    shutil.copytree(tokenize_artifact, copy)
    index = read_json(copy / "shards" / "index.json")
    shard = copy / index["files"][0]["path"]
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(TrainingInputError, match=r"index\.json says"):
        open_shards(copy, 1 << 16)


# --- sft ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sft_labels_cover_assistant_tokens_only(chain, tmp_path):
    """Every collated label outside the assistant turns (and their <|im_end|>) is masked."""
    from stages.sft.stage import build_trainer, load_messages

    inputs = stage_inputs("sft", chain["artifacts"], chain["curate"])
    trainer = build_trainer(stage_config("sft"), as_inputs(inputs), tmp_path)
    tokenizer = trainer.processing_class
    rendered = {}
    for row in load_messages(chain["curate"]):
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        rendered[text] = row["messages"]
    batch = next(iter(trainer.get_train_dataloader()))
    checked = 0
    for ids, mask, labels in zip(
        batch["input_ids"], batch["attention_mask"], batch["labels"], strict=True
    ):
        real = ids[mask.bool()]
        messages = rendered[tokenizer.decode(real)]  # the conversation this row came from
        assert (labels[~mask.bool()] == -100).all(), "padding must never be a target"
        targets = tokenizer.decode(ids[labels != -100])
        expected = "".join(
            m["content"] + "<|im_end|>" for m in messages if m["role"] == "assistant"
        )
        assert targets == expected
        masked = tokenizer.decode(ids[(labels == -100) & mask.bool()])
        assert "<|im_start|>assistant" in masked and "<|im_start|>user" in masked
        for message in messages:
            if message["role"] != "assistant":
                assert message["content"] in masked
        checked += 1
    assert checked == stage_config("sft")["batch_size"]


@pytest.mark.slow
def test_sft_loss_falls(chain):
    metrics = chain["metrics"]["sft"]
    assert metrics["last_loss"] < metrics["first_loss"]
    assert metrics["examples"] > 0


def test_sft_rejects_bad_rows(tmp_path):
    from stages.sft.stage import load_messages

    data = tmp_path / "data"
    data.mkdir()
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    bad = {"messages": [{"role": "user", "content": "hi"}]}
    (data / "sft.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(TrainingInputError, match=r"sft.jsonl:2: no assistant message"):
        load_messages(tmp_path)
    (data / "sft.jsonl").write_text("{not json\n")
    with pytest.raises(TrainingInputError, match=r"sft.jsonl:1: not valid JSON"):
        load_messages(tmp_path)
    with pytest.raises(TrainingInputError, match=r"model/config\.json not found"):
        run_stage("sft", stage_config("sft"), {"model": tmp_path, "data": tmp_path}, tmp_path / "o")


# --- dpo ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dpo_reports_reward_margins(chain):
    metrics = chain["metrics"]["dpo"]
    for key in ("margin_start", "margin_end", "accuracy_end", "probe_margin_end"):
        assert np.isfinite(metrics[key])
    history = read_json(chain["artifacts"]["dpo"] / "training/log_history.json")
    margins = [e["rewards/margins"] for e in history if "rewards/margins" in e]
    assert margins[0] == metrics["margin_start"] and margins[-1] == metrics["margin_end"]
    config = stage_config("dpo")
    assert len(margins) == config["steps"] // config["logging_steps"]
    # The held-out probe was evaluated after training (eval_* entry at the last step).
    assert history[-1]["step"] == config["steps"] and "eval_rewards/margins" in history[-1]


def test_dpo_probe_is_held_out(curate_artifact):
    from stages.dpo.stage import split_pairs

    train, probe = split_pairs(Path(curate_artifact), 5, seed=1)
    assert len(probe) == 5 and not [row for row in probe if row in train]
    assert split_pairs(Path(curate_artifact), 5, seed=1) == (train, probe)
    with pytest.raises(TrainingInputError, match=r"dpo.probe_size=\d+ leaves no training pairs"):
        split_pairs(Path(curate_artifact), len(train) + len(probe), seed=1)


# --- rlvr ---------------------------------------------------------------------------------------


def test_rlvr_reward_dispatches_each_row_to_its_verifier():
    from stages.rlvr.rewards import verifiable_reward

    completions = [
        [{"role": "assistant", "content": "7 + 5 = 12. The answer is 12."}],
        [{"role": "assistant", "content": "The answer is 13."}],
        [{"role": "assistant", "content": "all lower case"}],
        "Not Lower",
        [{"role": "assistant", "content": "one two three four"}],
    ]
    rewards = verifiable_reward(
        prompts=[[{"role": "user", "content": "q"}]] * 5,
        completions=completions,
        verifier=["numeric_answer", "numeric_answer", "lowercase", "lowercase", "max_words"],
        ground_truth=["12", "12", "", "", "3"],
        completion_ids=[[1]] * 5,
        trainer_state=None,
    )
    assert rewards == [1.0, 0.0, 1.0, 0.0, 0.0]


def test_rlvr_rejects_unknown_verifiers(tmp_path):
    from stages.rlvr.stage import load_prompts

    data = tmp_path / "data"
    data.mkdir()
    row = {"prompt": [{"role": "user", "content": "q"}], "ground_truth": "1"}
    lines = [
        json.dumps({**row, "verifier": "numeric_answer"}),
        json.dumps({**row, "verifier": "x"}),
    ]
    (data / "rlvr.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TrainingInputError, match=r"rlvr.jsonl:2: unknown verifier 'x'"):
        load_prompts(tmp_path)
    # An ifeval row's instruction ids must all have checkers (curate passes them on unchecked).
    truth = json.dumps({"instruction_id_list": ["punctuation:no_comma", "x:y"], "kwargs": [{}, {}]})
    lines[1] = json.dumps({**row, "verifier": "ifeval", "ground_truth": truth})
    (data / "rlvr.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TrainingInputError, match=r"rlvr.jsonl:2: .*unknown instruction ids: x:y"):
        load_prompts(tmp_path)


@pytest.mark.slow
def test_rlvr_reports_rewards(chain):
    metrics = chain["metrics"]["rlvr"]
    history = read_json(chain["artifacts"]["rlvr"] / "training/log_history.json")
    rewards = [e["reward"] for e in history if "reward" in e]
    assert len(rewards) == stage_config("rlvr")["steps"]
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert rewards[0] == metrics["reward_start"] and rewards[-1] == metrics["reward_end"]
    assert 0 < metrics["completion_length_start"] <= MICRO["rlvr"]["max_completion_length"]


def test_saved_tokenizer_bytes_do_not_follow_hf_hub_offline(
    tokenize_artifact: Path, tmp_path: Path
):
    """tokenizer_config.json records local_files_only; it must not follow the environment.

    CI found this: a pretrain job whose environment had HF_HUB_OFFLINE=1 saved other bytes than
    its rebuild. huggingface_hub reads the variable at import, hence one process per setting.
    """
    import os
    import subprocess
    import sys

    script = (
        "import sys; from stages.common.training import load_tokenizer; "
        "load_tokenizer(sys.argv[1]).save_pretrained(sys.argv[2])"
    )
    saved = []
    for name, offline in (("online", None), ("offline", "1")):
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        }
        if offline:
            env["HF_HUB_OFFLINE"] = offline
        target = tmp_path / name
        subprocess.run(
            [sys.executable, "-c", script, str(Path(tokenize_artifact) / "tokenizer"), str(target)],
            env=env,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        saved.append((target / "tokenizer_config.json").read_bytes())
    assert saved[0] == saved[1]
