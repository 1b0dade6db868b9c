"""δ-Rules-of-Thumb: parsing and distinct-n by hand, the bundled item set, classification and
generation on the tiny model, the critic path with a local classifier, exact recompute.

The critic here is a tiny *random* ``BertForSequenceClassification`` built in the test (no
trained δ-RoT critic can be downloaded): its verdicts are meaningless, but the path — a local
HF classifier directory, its digest recorded, verdicts stored per prediction — is the real one.
"""

from __future__ import annotations

import json

import pytest

from evals import delta_rot, sources
from reprolm.cli import main
from tests.evals.chat_model import with_chatml

ITEMS = sources.bundled("delta_rot_items.jsonl")


@pytest.fixture(scope="module")
def chat_model(tiny_model, tmp_path_factory):
    return with_chatml(tiny_model, tmp_path_factory.mktemp("drot-model") / "model")


@pytest.fixture(scope="module")
def critic(tiny_model, tmp_path_factory):
    """A random 2-label BERT classifier over the tiny model's tokenizer, saved as an HF dir."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    dest = tmp_path_factory.mktemp("drot-critic") / "critic"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=512, num_labels=2,
        pad_token_id=tokenizer.pad_token_id, id2label={0: "invalid", 1: "valid"},
        label2id={"invalid": 0, "valid": 1},
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_distinct_n_and_parsing_by_hand():
    texts = ["The cat sat.", "the cat ran!"]
    # words: the cat sat . | the cat ran !  -> 8 unigrams, 6 unique (the, cat, sat, ., ran, !)
    assert delta_rot.distinct_n(texts, 1) == 6 / 8
    # bigrams: (the cat)(cat sat)(sat .) | (the cat)(cat ran)(ran !) -> 6, 5 unique
    assert delta_rot.distinct_n(texts, 2) == 5 / 6
    assert delta_rot.distinct_n(["a"], 2) == 0.0 and delta_rot.distinct_n([], 1) == 0.0
    parsed = delta_rot.parse(" It is a campfire.\nRationale: Cooking is fine.")
    assert parsed == {"context": "It is a campfire.", "rationale": "Cooking is fine."}
    assert delta_rot.parse(" just words") == {"context": "just words", "rationale": ""}


def test_bundled_items_and_bad_input(tmp_path):
    items = delta_rot.read_items(ITEMS)
    assert len(items) == 16 and {i["update_type"] for i in items} == set(delta_rot.LABELS)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"action": "x", "update_type": "maybe"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*update_type"):
        delta_rot.read_items(bad)
    with pytest.raises(ValueError, match="critic must be an HF model directory"):
        (tmp_path / "d" / "critic").mkdir(parents=True)
        (tmp_path / "d" / "items.jsonl").write_text(ITEMS.read_text())
        delta_rot.locate(tmp_path / "d")


def test_classification_on_the_tiny_model(chat_model, tmp_path, capsys):
    out = tmp_path / "cls"
    argv = ["eval", "run", "delta_rot::classify", "--model", str(chat_model),
            "--data", str(ITEMS), "--out", str(out), "--json"]  # fmt: skip
    code, text, _ = run_cli(argv, capsys)
    result = json.loads(text)
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert code == 0 and result["instances"] == 16 and result["primary_metric"] == "accuracy"
    expected = [
        delta_rot.LABELS[0 if r["choices"][0]["loglik"] >= r["choices"][1]["loglik"] else 1]
        == r["gold"]
        for r in rows
    ]
    assert result["primary"] == sum(expected) / 16
    assert [c["continuation"] for c in rows[0]["choices"]] == [" strengthener", " weakener"]
    assert len(result["spec"]["dataset_digest"]) == 64
    code, text, _ = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text


def test_generation_with_a_local_critic(chat_model, critic, tmp_path, capsys):
    data = tmp_path / "drot"
    data.mkdir()
    (data / "items.jsonl").write_text("".join(ITEMS.read_text().splitlines(True)[:6]))
    out = tmp_path / "gen"
    argv = ["eval", "run", "delta_rot::generate", "--model", str(chat_model),
            "--data", str(data), "--out", str(out), "--max-gen-toks", "16",
            "--critic", str(critic)]  # fmt: skip
    code, _, _ = run_cli(argv, capsys)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert result["critic"]["name"] == "critic" and len(result["critic"]["digest"]) == 64
    assert result["critic"]["labels"] == {"0": "invalid", "1": "valid"}
    assert result["critic"]["source"] == "cli"
    assert result["primary_metric"] == "validity"
    assert all(set(r["critic"]) == {"p_valid", "verdict"} for r in rows)
    assert result["metrics"]["distinct_1"] == delta_rot.distinct_n(
        [r["generation"] for r in rows], 1
    )
    code, text, _ = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text

    # The same critic judges hand-written generations through `score`; a well-formed one is
    # sent to the critic, an ill-formed one is invalid unjudged.
    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        json.dumps({"action": "setting a fire", "update_type": "strengthener",
                    "response": " It is a campfire.\nRationale: Cooking is fine."}) + "\n"
        + json.dumps({"action": "setting a fire", "update_type": "weakener",
                      "response": " no rationale here"}) + "\n"
    )  # fmt: skip
    argv = ["eval", "score", "delta_rot::generate", "--predictions", str(preds),
            "--out", str(tmp_path / "scored"), "--json", "--critic", str(critic)]  # fmt: skip
    code, text, _ = run_cli(argv, capsys)
    scored = json.loads(text)
    rows = [
        json.loads(x) for x in (tmp_path / "scored" / "predictions.jsonl").read_text().splitlines()
    ]
    assert code == 0 and scored["metrics"]["well_formed"] == 0.5
    assert rows[0]["critic"]["p_valid"] is not None
    assert rows[1]["critic"] == {"p_valid": None, "verdict": False}
    assert scored["metrics"]["validity"] == float(rows[0]["critic"]["verdict"]) / 2

    # Recompute reads the stored verdicts: flipping one is detected.
    lines = (tmp_path / "scored" / "predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["critic"]["verdict"] = not first["critic"]["verdict"]
    lines[0] = json.dumps(first)
    (tmp_path / "scored" / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    code, text, _ = run_cli(["eval", "recompute", str(tmp_path / "scored")], capsys)
    assert code == 1 and "metric validity" in text


def test_generation_without_a_critic_reports_no_validity(critic, tmp_path, capsys, monkeypatch):
    # The environment variable that once named a critic has no effect: only the recipe
    # (evaluate.critics.delta_rot), --critic or the data's critic/ folder do.
    monkeypatch.setenv("REPROLM_DELTA_ROT_CRITIC", str(critic))
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"action": "a", "update_type": "weakener", "response": "x"}) + "\n")
    argv = ["eval", "score", "delta_rot::generate", "--predictions", str(preds), "--json"]
    code, text, _ = run_cli(argv, capsys)
    result = json.loads(text)
    assert code == 0 and "validity" not in result["metrics"] and result["critic"] is None
    assert result["primary_metric"] == "distinct_2"


def test_the_recipe_critic_is_pinned_into_the_evaluate_fingerprint(critic, tmp_path):
    """``evaluate.critics.delta_rot`` is hashed at plan time: its digest is in every evaluate
    job's config, a changed critic changes the fingerprints; absent, nothing changes."""
    import shutil

    from reprolm.hashing import hash_payload, payload_digest
    from reprolm.plan import load_plan
    from reprolm.recipe import RecipeError

    specs = {"specs": ["delta_rot::generate"]}
    plain = load_plan({"name": "t", "evaluate": specs}).get("evaluate", "sft")
    assert "critics" not in plain.config and "critic_digests" not in plain.config
    copy = shutil.copytree(critic, tmp_path / "critic")
    recipe = {"name": "t", "evaluate": {**specs, "critics": {"delta_rot": str(copy)}}}
    pinned = load_plan(recipe).get("evaluate", "sft")
    assert pinned.config["critic_digests"] == {"delta_rot": payload_digest(hash_payload(copy))}
    assert pinned.fingerprint != plain.fingerprint
    (copy / "config.json").write_text((copy / "config.json").read_text() + "\n")
    changed = load_plan(recipe).get("evaluate", "sft")
    assert changed.fingerprint not in (pinned.fingerprint, plain.fingerprint)
    bad = {"name": "t", "evaluate": {**specs, "critics": {"delta_rot": str(tmp_path)}}}
    with pytest.raises(RecipeError, match=r"evaluate.critics.delta_rot: .*\(no config.json\)"):
        load_plan(bad)


def test_a_pinned_critic_is_checked_and_recorded(critic, tmp_path):
    """The family judges with the recipe's critic (evals.critics.from_config) and refuses one
    that changed since the plan."""
    from evals import critics
    from reprolm.evalplan import pin_critics

    config = pin_critics({"critics": {"delta_rot": str(critic)}})
    chosen = critics.from_config(config)["delta_rot"]
    _, located = delta_rot.locate(ITEMS, chosen)
    assert located == chosen and chosen.digest == config["critic_digests"]["delta_rot"]
    item = {"id": "1", "action": "a", "update_type": "weakener"}
    rows = [delta_rot._generation_row(item, 0, " C.\nRationale: R.")]
    record = delta_rot.judge(chosen, rows, valid_label=1)
    assert record["digest"] == chosen.digest and record["source"] == "evaluate.critics.delta_rot"
    stale = critics.Critic(chosen.path, "0" * 64, chosen.source)
    with pytest.raises(ValueError, match=r"evaluate.critics.delta_rot: .* changed since the plan"):
        delta_rot.judge(stale, rows, valid_label=1)
