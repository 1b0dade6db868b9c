"""A foreign base model (no chat template, no pad) through base_model → sft → dpo → rlvr.

Two tiny random Llamas, one with a SentencePiece-style Unigram tokenizer (``▁`` Metaspace, bos
``<s>``, eos ``</s>``: Llama 2 style) and one with a byte-level BPE (Llama 3 style), neither with
a pad token nor a chat template. SFT must add Tulu's ``<pad>`` and template, grow the embeddings
and record it; the later stages must run on the tokenizer SFT saved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stages.common.job import as_inputs
from stages.common.tokenizer_changes import TULU_TEMPLATE, sha256
from stages.tokenize.given import has_generation_block
from tests.stages.test_training import payload_files, run_stage, stage_config

MARKERS = "<|system|>\nsystem\n<|user|>\nuser\n<|assistant|>\nassistant\n"


def corpus(curate: Path) -> list[str]:
    """Every string of the curate artifact's jsonl files, and the Tulu role headers."""
    texts = [MARKERS]

    def walk(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path in sorted((curate / "data").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            walk(json.loads(line))
    return texts


def unigram_tokenizer(texts: list[str]) -> Any:
    """Llama 2 style: Unigram pieces, ``▁`` for spaces, <s> prepended, eos </s>, no pad."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>"
    )
    backend.train_from_iterator(texts, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def byte_level_tokenizer(texts: list[str]) -> Any:
    """Llama 3 style: byte-level BPE, bos <|begin_of_text|>, eos <|end_of_text|>, no pad."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"
    )


KINDS = {"unigram": (unigram_tokenizer, False), "bytelevel": (byte_level_tokenizer, True)}


def save_base(kind: str, curate: Path, where: Path) -> Path:
    """A random tiny LlamaForCausalLM and the tokenizer, as a released model's HF directory."""
    build, tied = KINDS[kind]
    tokenizer = build(corpus(curate))
    assert tokenizer.pad_token is None and tokenizer.chat_template is None
    tiny_llama(where, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tied)
    tokenizer.save_pretrained(str(where))
    return where


def tiny_llama(where: Path, vocab_size: int, bos_id: int, eos_id: int, tied: bool) -> None:
    """A random tiny LlamaForCausalLM saved (safetensors) in ``where``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=tied,
    )
    LlamaForCausalLM(config).save_pretrained(str(where), safe_serialization=True)


def changes_of(artifact: Path) -> dict[str, Any]:
    return json.loads((artifact / "training/tokenizer_changes.json").read_text("utf-8"))


@pytest.fixture(scope="module", params=sorted(KINDS))
def chain(request, tmp_path_factory, curate_artifact) -> dict[str, Any]:
    kind = request.param
    root = tmp_path_factory.mktemp(f"foreign-{kind}")
    source = save_base(kind, Path(curate_artifact), root / "released")
    artifacts = {"base_model": root / "base_model"}
    metrics = {
        "base_model": run_stage(
            "base_model",
            {"path": str(source), "seed": 7, "threads": 1},
            {},
            artifacts["base_model"],
        )
    }
    upstream = "base_model"
    for stage in ("sft", "dpo", "rlvr"):
        artifacts[stage] = root / stage
        inputs = {"model": artifacts[upstream], "data": Path(curate_artifact)}
        metrics[stage] = run_stage(stage, stage_config(stage), inputs, artifacts[stage])
        upstream = stage
    return {"kind": kind, "artifacts": artifacts, "metrics": metrics, "curate": curate_artifact}


def test_sft_records_what_it_added(chain):
    from transformers import AutoTokenizer

    base = AutoTokenizer.from_pretrained(str(chain["artifacts"]["base_model"] / "model"))
    sft = chain["artifacts"]["sft"]
    backend = json.loads((sft / "model/tokenizer.json").read_text("utf-8"))
    style = {"unigram": ("Unigram", "Metaspace"), "bytelevel": ("BPE", "ByteLevel")}
    assert (backend["model"]["type"], backend["pre_tokenizer"]["type"]) == style[chain["kind"]]
    changes = changes_of(sft)
    tokenizer = AutoTokenizer.from_pretrained(str(sft / "model"))
    assert changes["pad_token"] == {"token": "<pad>", "id": len(base)}
    assert changes["added_tokens"] == {"<pad>": len(base)}
    assert changes["tokenizer_size"] == {"before": len(base), "after": len(base) + 1}
    assert changes["chat_template"]["name"] == "tulu"
    assert changes["chat_template"]["sha256"] == sha256(tokenizer.chat_template)
    assert changes["chat_template"]["replaced_sha256"] is None
    assert changes["chat_template"]["end_of_turn"] == base.eos_token
    rows_after = -(-(len(base) + 1) // 8) * 8
    assert changes["embeddings"]["rows_before"] == len(base)
    assert changes["embeddings"]["rows_after"] == rows_after
    assert changes["embeddings"]["resized"] is True
    assert tokenizer.pad_token == "<pad>" and tokenizer.eos_token == base.eos_token
    assert tokenizer.chat_template == TULU_TEMPLATE
    summary = chain["metrics"]["sft"]
    assert summary["tokenizer_chat_template"] == "tulu"
    assert summary["tokenizer_added_tokens"] == 1
    assert summary["embedding_rows_before"] == len(base)
    assert summary["embedding_rows_after"] == rows_after
    # The rendered text is Tulu's: the generation markers render nothing.
    text = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo"},
            {"role": "user", "content": "ok"},
            {"role": "assistant", "content": "bye"},
        ],
        tokenize=False,
    )
    eos = base.eos_token
    assert text == f"<|user|>\nhi\n<|assistant|>\nyo{eos}\n<|user|>\nok\n<|assistant|>\nbye{eos}"


def test_sft_model_has_the_grown_embeddings(chain):
    import torch
    from transformers import AutoModelForCausalLM

    changes = changes_of(chain["artifacts"]["sft"])
    rows, new = changes["embeddings"]["rows_before"], changes["embeddings"]["rows_after"]
    base = AutoModelForCausalLM.from_pretrained(str(chain["artifacts"]["base_model"] / "model"))
    model = AutoModelForCausalLM.from_pretrained(str(chain["artifacts"]["sft"] / "model"))
    assert model.config.vocab_size == new
    assert model.get_input_embeddings().weight.shape == (new, 32)
    assert model.get_output_embeddings().weight.shape == (new, 32)
    assert model.config.tie_word_embeddings == KINDS[chain["kind"]][1]
    # Generation stops on the eos (Tulu's end of turn) and pads with the added <pad>.
    pad_id = changes_of(chain["artifacts"]["sft"])["pad_token"]["id"]
    assert model.generation_config.eos_token_id == [base.config.eos_token_id]
    assert model.generation_config.pad_token_id == pad_id
    assert model.config.eos_token_id == base.config.eos_token_id
    assert base.get_input_embeddings().weight.shape == (rows, 32)
    for later in ("dpo", "rlvr"):
        grown = AutoModelForCausalLM.from_pretrained(str(chain["artifacts"][later] / "model"))
        assert grown.get_input_embeddings().weight.shape == (new, 32)
    # The new rows started equal (the mean of the old rows) and no new id is ever an input
    # that counts (padding is masked), so their updates are equal too: they stay identical.
    for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        added = weight[rows:].detach()
        assert torch.equal(added, added[:1].expand_as(added))


def test_sft_new_rows_start_at_the_mean(curate_artifact, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stages.common.tokenizer_changes import adapt_tokenizer, resize_embeddings

    source = save_base("unigram", Path(curate_artifact), tmp_path / "released")
    model = AutoModelForCausalLM.from_pretrained(str(source))
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    changes = adapt_tokenizer(tokenizer)
    resize_embeddings(model, tokenizer, changes)
    rows = old_in.shape[0]
    new_in = model.get_input_embeddings().weight.detach()
    new_out = model.get_output_embeddings().weight.detach()
    assert torch.equal(new_in[:rows], old_in) and torch.equal(new_out[:rows], old_out)
    assert torch.equal(new_in[rows:], old_in.mean(0).expand_as(new_in[rows:]))
    assert torch.equal(new_out[rows:], old_out.mean(0).expand_as(new_out[rows:]))


def test_a_partitioned_model_is_not_resized(curate_artifact, tmp_path):
    """ZeRO-3 partitions leave each rank an empty local tensor (DeepSpeed marks the parameter
    with ``ds_id``, as ``full_parameters`` checks): resizing then would be wrong, so it fails."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stages.common.tokenizer_changes import (
        PartitionedModelError,
        adapt_tokenizer,
        resize_embeddings,
    )

    source = save_base("unigram", Path(curate_artifact), tmp_path / "released")
    model = AutoModelForCausalLM.from_pretrained(str(source))
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    changes = adapt_tokenizer(tokenizer)
    model.get_input_embeddings().weight.ds_id = 0
    with pytest.raises(PartitionedModelError, match="before any TrainingArguments"):
        resize_embeddings(model, tokenizer, changes)
    assert model.get_input_embeddings().weight.shape[0] == changes["tokenizer_size"]["before"]


def test_sft_labels_mask_everything_but_assistant_turns(chain, tmp_path):
    from stages.sft.stage import build_trainer, load_messages

    inputs = {"model": chain["artifacts"]["base_model"], "data": chain["curate"]}
    # Long enough for whole conversations (the small vocabularies split them finely).
    trainer = build_trainer(stage_config("sft", max_length=1024), as_inputs(inputs), tmp_path)
    tokenizer = trainer.processing_class
    eos = tokenizer.eos_token

    def squeeze(text: str) -> str:  # Metaspace decoding may move spaces around special tokens
        return text.replace(" ", "")

    rendered = {}
    for row in load_messages(chain["curate"]):
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
        rendered[squeeze(text)] = row["messages"]
    batch = next(iter(trainer.get_train_dataloader()))
    checked = 0
    for ids, mask, labels in zip(
        batch["input_ids"], batch["attention_mask"], batch["labels"], strict=True
    ):
        assert (ids[~mask.bool()] == tokenizer.convert_tokens_to_ids("<pad>")).all()
        assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
        assert (labels[~mask.bool()] == -100).all(), "padding must never be a target"
        messages = rendered[squeeze(tokenizer.decode(ids[mask.bool()]))]
        targets = tokenizer.decode(ids[labels != -100])
        expected = "".join(m["content"] + eos for m in messages if m["role"] == "assistant")
        assert squeeze(targets) == squeeze(expected)
        masked = squeeze(tokenizer.decode(ids[(labels == -100) & mask.bool()]))
        assert "<|user|>" in masked and "<|assistant|>" in masked and eos not in masked
        for message in messages:
            if message["role"] != "assistant":
                assert squeeze(message["content"]) in masked
        checked += 1
    assert checked == stage_config("sft")["batch_size"]


def test_later_stages_run_on_the_sft_tokenizer(chain):
    from transformers import AutoTokenizer

    sft = payload_files(chain["artifacts"]["sft"] / "model")
    for stage in ("dpo", "rlvr"):
        root = chain["artifacts"][stage]
        files = payload_files(root / "model")
        for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            assert files[name] == sft[name], f"{stage} changed {name}"
        assert not (root / "training/tokenizer_changes.json").exists()
        assert "tokenizer_chat_template" not in chain["metrics"][stage]
        tokenizer = AutoTokenizer.from_pretrained(str(root / "model"))
        assert tokenizer.pad_token == "<pad>" and has_generation_block(tokenizer)
    assert chain["metrics"]["dpo"]["steps"] == stage_config("dpo")["steps"]
    rewards = chain["metrics"]["rlvr"]
    assert 0.0 <= rewards["reward_end"] <= 1.0


def test_sft_is_bitwise_deterministic(chain, tmp_path):
    inputs = {"model": chain["artifacts"]["base_model"], "data": chain["curate"]}
    metrics = run_stage("sft", stage_config("sft"), inputs, tmp_path / "sft")
    first, second = payload_files(chain["artifacts"]["sft"]), payload_files(tmp_path / "sft")
    assert "training/tokenizer_changes.json" in first
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
    assert metrics == chain["metrics"]["sft"]


def test_evaluate_chats_with_the_added_template(chain, world_artifact, tmp_path):
    """evaluate formats generative tasks with the Tulu template SFT added; the base stays plain."""
    from tests.stages.test_evaluate import evaluate, samples

    eos = changes_of(chain["artifacts"]["sft"])["chat_template"]["end_of_turn"]
    _, results = evaluate(
        tmp_path / "sft", chain["artifacts"]["sft"], world_artifact, checkpoint="sft"
    )
    assert results["chat_template"]["arith_gen"] is True
    prompt = samples(tmp_path / "sft", "arith_gen")[0]["context"]
    assert prompt.startswith("<|user|>\n") and prompt.endswith("\n<|assistant|>\n")
    assert eos not in prompt
    _, results = evaluate(
        tmp_path / "base", chain["artifacts"]["base_model"], world_artifact, checkpoint="pretrain"
    )
    assert not any(results["chat_template"].values())
    assert not samples(tmp_path / "base", "arith_gen")[0]["context"].startswith("<|user|>")


def test_tulu_template_ends_turns_with_eos_even_beside_im_end(curate_artifact):
    """A foreign vocabulary that happens to hold <|im_end|> still ends Tulu turns with eos."""
    from stages.common.tokenizer_changes import adapt_tokenizer
    from stages.common.training import end_of_turn

    tokenizer = byte_level_tokenizer(corpus(Path(curate_artifact)))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    assert end_of_turn(tokenizer) == "<|im_end|>"  # ChatML's, when there is no template
    changes = adapt_tokenizer(tokenizer)
    assert changes["chat_template"]["end_of_turn"] == "<|end_of_text|>"
    assert end_of_turn(tokenizer) == "<|end_of_text|>"
    assert adapt_tokenizer(tokenizer) == {}  # adapted once: nothing more to add


@pytest.fixture(scope="module")
def recipe_run(curate_artifact, tmp_path_factory) -> dict[str, Any]:
    """The micro recipe with base_model.path (no tokenize/pretrain) through the runner, every
    job to the release, in a fresh directory (paths in the plan are relative to ``root``)."""
    import importlib

    import yaml

    from reprolm.plan import load_plan
    from reprolm.runner import execute
    from reprolm.stagetable import reproducibility

    repository = Path(__file__).resolve().parents[2]
    root = tmp_path_factory.mktemp("foreign-recipe")
    source = save_base("unigram", Path(curate_artifact), root / "released")
    recipe = yaml.safe_load((repository / "config/micro.yaml").read_text("utf-8"))
    recipe["base_model"] = {"path": str(source)}
    recipe["evaluate"] = {**recipe["evaluate"], "limit": 3, "specs": []}
    manifests = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("REPROLM_MLFLOW", "off")
        plan = load_plan(recipe)
        for key, job in plan.jobs.items():  # in dependency order
            run = importlib.import_module(f"stages.{job.stage}.stage").run
            inputs = {name: Path(path) for name, path in plan.input_dirs(job).items()}
            manifests[key] = execute(
                job.stage, run, job.config, inputs, Path(job.artifact_dir),
                reproducibility=reproducibility(job.stage), uses_torch=job.stage != "release",
            )  # fmt: skip
    return {"root": root, "plan": plan, "manifests": manifests}


@pytest.mark.slow
def test_whole_chain_from_a_foreign_base_releases_and_audits_clean(recipe_run, monkeypatch, capsys):
    """Every job to the release, then ``reprolm audit`` (the function, then the CLI entry point
    on the release): the lineage reaches base_model, and the tokenizer record SFT added is
    hashed like any payload file (edited, the audit breaks on it)."""
    from reprolm.audit import audit
    from reprolm.cli import main

    plan, manifests = recipe_run["plan"], recipe_run["manifests"]
    monkeypatch.chdir(recipe_run["root"])
    assert not plan.by_stage("tokenize") and not plan.by_stage("pretrain")
    sft = manifests["sft/sft"]
    assert "training/tokenizer_changes.json" in sft["files"]
    assert sft["metrics"]["tokenizer_chat_template"] == "tulu"
    release = plan.release.artifact_dir
    report = audit(Path(release))
    assert report.problems == [] and report.missing == []
    checked = {r.node.stage: r.checks for r in report.nodes}
    assert {"base_model", "sft", "dpo", "rlvr", "evaluate", "release"} <= set(checked)
    assert "tokenize" not in checked and "pretrain" not in checked
    for stage in ("base_model", "sft", "release"):
        for check in ("payload", "fingerprint", "inputs"):
            assert checked[stage][check]["status"] == "ok", (stage, checked[stage])

    def cli_audit(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as done:
            main(["audit", *args, release])
        return done.value.code, capsys.readouterr().out

    code, out = cli_audit("--json")
    cli = json.loads(out)
    assert code == 0 and cli["ok"] and cli["problems"] == [] and cli["missing_payloads"] == []
    nodes = {node["stage"]: node for node in cli["nodes"]}
    assert {node["id"] for node in cli["nodes"]} == {
        f"{job.stage}/{job.label}-{job.fingerprint}" for job in plan.jobs.values()
    }
    base, sft_node = plan.get("base_model", "base_model"), plan.get("sft", "sft")
    assert nodes["base_model"]["path"] == base.artifact_dir
    assert nodes["base_model"]["inputs"] == {}  # a source: the lineage ends there
    assert nodes["sft"]["inputs"]["model"] == nodes["base_model"]["id"]
    assert nodes["sft"]["digest"] == sft["digest"]
    for stage in ("base_model", "sft"):
        assert nodes[stage]["status"] == "ok"
        for check in ("payload", "fingerprint", "inputs"):
            assert nodes[stage]["checks"][check]["status"] == "ok", nodes[stage]
    code, text = cli_audit()
    assert code == 0 and "clean" in text
    record = Path(sft_node.artifact_dir) / "training/tokenizer_changes.json"
    original = record.read_bytes()
    changes = json.loads(original)
    changes["embeddings"]["rows_after"] += 8  # a record that no longer tells what SFT did
    try:
        record.write_text(json.dumps(changes), "utf-8")
        code, out = cli_audit("--json")
    finally:
        record.write_bytes(original)
    broken = json.loads(out)
    assert code == 1 and not broken["ok"]
    assert any("training/tokenizer_changes.json" in p for p in broken["problems"]), broken
    assert {n["stage"] for n in broken["nodes"] if n["status"] != "ok"} == {"sft"}


@pytest.mark.slow
def test_sft_under_zero3_grows_the_embeddings_before_partitioning(recipe_run, tmp_path):
    """The recipe's SFT job again on 2 CPU processes under DeepSpeed ZeRO-3 (reprolm.launch,
    torchrun, gloo): the tokenizer is adapted and the embeddings grown (mean rows) on the whole
    model before DeepSpeed partitions it, so the gathered checkpoint has the grown matrices and
    the same record and new rows as the single-process job."""
    import os
    import subprocess
    import sys

    import deepspeed  # noqa: F401  (the `test` extra installs it: no skip)
    import torch
    from transformers import AutoModelForCausalLM

    root, plan = recipe_run["root"], recipe_run["plan"]
    job = plan.get("sft", "sft")
    out = tmp_path / "zero3" / Path(job.artifact_dir).name
    inputs = [f"--input={name}={root / path}" for name, path in plan.input_dirs(job).items()]
    command = [
        sys.executable, "-m", "reprolm.launch", "--procs-per-node", "2", "--deepspeed", "zero3",
        "--micro-batch-size", "1", "--", "stages.sft", "--config-json", json.dumps(job.config),
        *inputs, "--output", str(out),
    ]  # fmt: skip
    repository = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": repository, "REPROLM_MLFLOW": "off"}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-6000:]
    manifest = json.loads((out / "provenance.json").read_text("utf-8"))
    assert manifest["execution"]["deepspeed_config"]["zero_optimization"]["stage"] == 3
    assert manifest["environment"]["world_size"] == 2
    single = root / job.artifact_dir
    assert changes_of(out) == changes_of(single)
    rows = changes_of(out)["embeddings"]["rows_before"]
    grown = changes_of(out)["embeddings"]["rows_after"]
    assert grown > rows
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (out / "model" / name).read_bytes() == (single / "model" / name).read_bytes()
    zero3 = AutoModelForCausalLM.from_pretrained(str(out / "model"))
    alone = AutoModelForCausalLM.from_pretrained(str(single / "model"))
    base = AutoModelForCausalLM.from_pretrained(
        str(root / plan.get("base_model", "base_model").artifact_dir / "model")
    )
    assert zero3.config.vocab_size == grown
    pairs = [
        (zero3.get_input_embeddings(), alone.get_input_embeddings(), base.get_input_embeddings()),
        (
            zero3.get_output_embeddings(),
            alone.get_output_embeddings(),
            base.get_output_embeddings(),
        ),
    ]
    for ours, reference, start in pairs:
        assert ours.weight.shape == (grown, 32)
        added = ours.weight[rows:].detach()
        assert torch.equal(added, added[:1].expand_as(added))  # started equal: the mean
        # The same training as on one process (ZeRO-3 splits the batch, not the arithmetic).
        assert torch.allclose(ours.weight, reference.weight, atol=1e-4)
        assert start.weight.shape == (rows, 32)


def sentencepiece_only(curate: Path, where: Path) -> Path:
    """A Llama 2 style release with its tokenizer as a SentencePiece ``tokenizer.model`` only.

    The file is a real SentencePiece ModelProto (Unigram, the trained pieces and scores, unk/bos/
    eos as SentencePiece numbers them), serialized with transformers' copy of the protobuf
    schema; the ``sentencepiece`` package itself is not installed here.
    """
    from transformers.convert_slow_tokenizer import import_protobuf

    source = save_base("unigram", curate, where)
    backend = json.loads((source / "tokenizer.json").read_text("utf-8"))
    proto = import_protobuf().ModelProto()
    kinds = {"<unk>": 2, "<s>": 3, "</s>": 3}  # UNKNOWN, CONTROL; every other piece NORMAL (1)
    for piece, score in backend["model"]["vocab"]:
        proto.pieces.add(piece=piece, score=score, type=kinds.get(piece, 1))
    spec = proto.trainer_spec
    spec.model_type, spec.vocab_size = 1, len(proto.pieces)  # UNIGRAM
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = 0, 1, 2, -1
    proto.normalizer_spec.name, proto.normalizer_spec.add_dummy_prefix = "identity", True
    (source / "tokenizer.model").write_bytes(proto.SerializeToString())
    (source / "tokenizer.json").unlink()
    config = json.loads((source / "tokenizer_config.json").read_text("utf-8"))
    config["tokenizer_class"] = "LlamaTokenizer"
    (source / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    return source


def test_a_sentencepiece_only_base_is_refused_with_the_conversion(curate_artifact, tmp_path):
    """No tokenizer.json beside tokenizer.model: base_model refuses before copying, naming the
    directory, the missing file and the conversion (sentencepiece is not a dependency)."""
    from transformers.convert_slow_tokenizer import import_protobuf

    from stages.base_model.stage import BaseModelError

    source = sentencepiece_only(Path(curate_artifact), tmp_path / "llama2")
    parsed = import_protobuf().ModelProto()
    parsed.ParseFromString((source / "tokenizer.model").read_bytes())
    assert parsed.pieces[1].piece == "<s>" and parsed.trainer_spec.eos_id == 2
    config = {"path": str(source), "seed": 7, "threads": 1}
    expected = (
        rf"base_model\.path={source}: a SentencePiece tokenizer\.model but no tokenizer\.json"
        r".*pip install sentencepiece protobuf.*LlamaTokenizerFast"
    )
    with pytest.raises(BaseModelError, match=expected):
        run_stage("base_model", config, {}, tmp_path / "base_model")
    assert list((tmp_path / "base_model").iterdir()) == []  # refused before the copy
    (source / "tokenizer.model").unlink()
    with pytest.raises(BaseModelError, match=rf"base_model\.path={source}: no tokenizer\.json"):
        run_stage("base_model", config, {}, tmp_path / "again")


def test_the_conversion_named_in_the_refusal_works(curate_artifact, tmp_path):
    """Where sentencepiece is installed: a Llama 2 style release (a SentencePiece BPE with byte
    fallback and no normalization, as Llama 2's, trained here) is refused, the refusal's command
    writes a tokenizer.json, and base_model then takes a tokenizer that encodes as the
    SentencePiece model does."""
    spm = pytest.importorskip("sentencepiece")
    from transformers import AutoTokenizer, LlamaTokenizerFast

    from stages.base_model.stage import BaseModelError

    source = tmp_path / "llama2"
    source.mkdir()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus(Path(curate_artifact))), model_prefix=str(source / "tok"),
        model_type="bpe", vocab_size=400, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, normalization_rule_name="identity", remove_extra_whitespaces=False,
        num_threads=1, minloglevel=2,
    )  # fmt: skip
    (source / "tok.model").rename(source / "tokenizer.model")
    processor = spm.SentencePieceProcessor(model_file=str(source / "tokenizer.model"))
    tiny_llama(source, processor.get_piece_size(), 1, 2, tied=False)
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, **special}
    (source / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    job = {"path": str(source), "seed": 7, "threads": 1}
    with pytest.raises(BaseModelError) as refused:
        run_stage("base_model", job, {}, tmp_path / "refused")
    assert "LlamaTokenizerFast as T; T.from_pretrained(" in str(refused.value)
    LlamaTokenizerFast.from_pretrained(str(source)).save_pretrained(str(source))
    run_stage("base_model", job, {}, tmp_path / "base_model")
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "base_model/model"))
    for text in (MARKERS, "the answer is 42", "naïve café ☃"):
        assert tokenizer(text)["input_ids"] == [1, *processor.encode(text)], text


def test_the_projects_own_tokenizer_is_left_alone(tokenize_artifact):
    """This project's BPE has its pad and a {% generation %} template: nothing is added."""
    from stages.common.tokenizer_changes import adapt_tokenizer, summary_fields
    from stages.common.training import load_tokenizer

    tokenizer = load_tokenizer(Path(tokenize_artifact) / "tokenizer")
    before = (len(tokenizer), tokenizer.pad_token, tokenizer.chat_template)
    assert adapt_tokenizer(tokenizer) == {} and summary_fields({}) == {}
    assert (len(tokenizer), tokenizer.pad_token, tokenizer.chat_template) == before


def test_foreign_sft_resumes_bitwise(chain, tmp_path):
    """A resumed job adapts the tokenizer and grows the embeddings again before loading state."""
    import shutil

    from stages.common import checkpoints
    from stages.common.job import JobContext

    inputs = {"model": chain["artifacts"]["base_model"], "data": chain["curate"]}
    config = stage_config("sft", steps=6, logging_steps=2)
    store = tmp_path / "checkpoints"

    def context() -> JobContext:
        return JobContext(checkpoint_dir=store, checkpoint_every=2, checkpoint_keep=10)

    run_stage("sft", config, inputs, tmp_path / "first", context())
    for step, path in checkpoints.checkpoints(store):
        if step > 2:
            shutil.rmtree(path)
    resumed = context()
    run_stage("sft", config, inputs, tmp_path / "resumed", resumed)
    assert resumed.resumed_step == 2
    assert payload_files(tmp_path / "resumed") == payload_files(tmp_path / "first")
