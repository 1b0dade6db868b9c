"""curate stage: normalization, dedup, Tulu 3 decontamination finds exactly the planted items."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from stages.curate.decontaminate import decontaminate, instance_grams, words
from stages.curate.gather import CurateError
from stages.curate.normalize import dedup, normalize_text
from tests.stages.micro import MICRO_CONFIGS, micro_config, run_stage

TRAIN = ("pretrain", "midtrain", "sft", "preference", "rlvr")


def load(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_normalize_text() -> None:
    assert normalize_text("ﬁve\u00a0 cats\t\tsit ") == "five cats sit"  # NFKC ligature, NBSP
    assert normalize_text("Ｑuestion: １２\r\n\r\n\r\n\nAnswer:  3 ") == "Question: 12\n\nAnswer: 3"
    assert normalize_text("Question: a\nAnswer: b") == "Question: a\nAnswer: b"  # newline kept


def test_dedup_keeps_first_and_ignores_id_and_kind() -> None:
    rows = [
        {"id": "a", "kind": "x", "text": "same"},
        {"id": "b", "kind": "y", "text": "same"},
        {"id": "c", "kind": "x", "text": "other"},
    ]
    assert [r["id"] for r in dedup(rows)] == ["a", "c"]


def test_words_split_on_non_alphanumerics() -> None:
    assert words("What is 7 + 5?\nAnswer: Zoë's") == ["what", "is", "7", "5", "answer", "zoë", "s"]


def test_instance_score_is_token_coverage() -> None:
    """A 12-word instance: a doc sharing its first 8 words covers 8/12 (flagged at 0.5); a
    doc sharing 7 consecutive words contains no 8-gram (score 0); short texts are one gram."""
    instance = "one two three four five six seven eight nine ten eleven twelve"
    total, grams = instance_grams([instance], 8)
    assert total == 12 and len(grams) == 5
    docs = {
        "pretrain": [
            [words("zero one two three four five six seven eight")],  # 8/12 covered
            [words("one two three four five six seven")],  # 7 words: no 8-gram
            [words("five six seven eight nine ten eleven twelve thirteen")],  # 8/12
        ],
        "sft": [[words("what is 7 5")], [words("so what is 7 5 then")], [words("what is 7")]],
    }
    report = decontaminate(
        docs, {"long": [("L", [instance])], "short": [("S", ["What is 7 + 5?"])]}, 8, 0.5
    )
    assert report.tasks["long"]["flagged_ids"] == ["L"]
    assert report.removed["pretrain"] == {0, 2}
    assert report.tasks["short"]["flagged_ids"] == ["S"]
    assert report.removed["sft"] == {0, 1}  # "what is 7" alone does not contain the gram
    strict = decontaminate(docs, {"long": [("L", [instance])]}, 8, 0.7)
    assert strict.tasks["long"]["flagged"] == 0 and strict.removed["pretrain"] == set()


def test_planted_items_found_and_removed(world_artifact: pathlib.Path, curate_artifact) -> None:
    planted = json.loads((world_artifact / "planted.json").read_text())
    report = json.loads((curate_artifact / "decontamination.json").read_text())
    assert report["ngram"] == 8 and report["threshold"] == 0.5
    flagged = [i for task in report["eval_sets"].values() for i in task["flagged_ids"]]
    # Every planted instance is flagged and no held-out (non-planted) instance is.
    assert sorted(flagged) == sorted(planted["ids"])
    for task, stats in report["eval_sets"].items():
        size = MICRO_CONFIGS["world"]["eval_size"][task]
        assert stats["instances"] == size
        assert stats["contamination"] == pytest.approx(stats["flagged"] / size)
    # The planted documents, and only they, are removed.
    removed = report["removed"]
    assert removed["pretrain"]["ids"] == sorted(planted["documents"]["pretrain"])
    assert removed["sft"]["ids"] == sorted(planted["documents"]["sft"])
    assert removed["preference"]["documents"] == removed["rlvr"]["documents"] == 0
    for name in ("pretrain", "sft"):
        kept = {row["id"] for row in load(curate_artifact / "data" / f"{name}.jsonl")}
        assert not kept & set(planted["documents"][name])


def test_curation_counts_match_files(world_artifact: pathlib.Path, curate_artifact) -> None:
    counts = json.loads((curate_artifact / "curation.json").read_text())
    for name in TRAIN:
        c = counts[name]
        assert c["documents_in"] == len(load(world_artifact / "train" / f"{name}.jsonl"))
        assert c["documents_in"] >= c["after_normalize"] >= c["after_dedup"]
        assert c["after_dedup"] >= c["after_decontamination"]
        rows = load(curate_artifact / "data" / f"{name}.jsonl")
        assert len(rows) == c["after_decontamination"]
        assert all(list(row) == sorted(row) for row in rows)


def test_normalizes_dedups_and_reports_unclean_input(tmp_path: pathlib.Path, world_artifact):
    world = tmp_path / "world"
    shutil.copytree(world_artifact, world)
    path = world / "train" / "pretrain.jsonl"
    extra = [
        {"id": "x1", "kind": "sentence", "text": "The\u00a0cat   sleeps."},
        {"id": "x2", "kind": "sentence", "text": "The cat sleeps. "},
        {"id": "x3", "kind": "sentence", "text": " \t "},
    ]
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in extra)
    run_stage("curate", micro_config("curate"), {"world": world}, tmp_path / "out")
    kept = {r["id"]: r for r in load(tmp_path / "out" / "data" / "pretrain.jsonl")}
    assert kept["x1"]["text"] == "The cat sleeps." and "x2" not in kept and "x3" not in kept

    with path.open("a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    lines = len(path.read_text().splitlines())
    # One broken line of ~300 is under reject_rate_max=0.01: rejected, counted, listed.
    run_stage("curate", micro_config("curate"), {"world": world}, tmp_path / "tolerated")
    rejects = load(tmp_path / "tolerated" / "rejects.jsonl")
    assert [
        (r["kind"], r["line"], r["file"].endswith("train/pretrain.jsonl")) for r in rejects
    ] == [("pretrain", lines, True)]
    assert "malformed JSON" in rejects[0]["reason"]
    counts = json.loads((tmp_path / "tolerated" / "curation.json").read_text())["pretrain"]
    assert counts["rejected"] == 1 and counts["sources"]["world"]["rejected"] == 1
    # At a rate limit of 0 the same line fails the stage, naming file:line.
    with pytest.raises(CurateError, match=rf"pretrain.jsonl:{lines}: malformed JSON"):
        cfg = micro_config("curate") | {"reject_rate_max": 0.0}
        run_stage("curate", cfg, {"world": world}, tmp_path / "bad")


def test_decontaminate_false_reports_but_keeps(tmp_path: pathlib.Path, world_artifact) -> None:
    cfg = micro_config("curate") | {"decontaminate": False}
    run_stage("curate", cfg, {"world": world_artifact}, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "decontamination.json").read_text())
    assert sum(t["flagged"] for t in report["eval_sets"].values()) == 4
    assert all(r["documents"] == 0 for r in report["removed"].values())


def test_bitwise_deterministic(tmp_path: pathlib.Path, world_artifact: pathlib.Path) -> None:
    for name in ("a", "b"):
        run_stage("curate", micro_config("curate"), {"world": world_artifact}, tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 13  # 5 train sets, their 5 decision records, rejects, 2 reports
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
