"""The research benchmarks' ``texts`` hooks (what decontamination matches training data
against) and their loaders of the released data formats, on small fixtures."""

from __future__ import annotations

import json
import shutil

import pytest

from evals import sources
from evals.families import family
from tests.evals import wvb_data
from tests.evals.research.conftest import EVAL_DATA, FIXTURES

EVALS_DATA = EVAL_DATA.parents[1] / "evals" / "data"
SIMPLETOM = EVAL_DATA / "simpletom" / "items_sample.jsonl"
PROC2PDDL = FIXTURES / "proc2pddl"
WVB = FIXTURES / "worldvaluesbench" / "WorldValuesBench"


def test_every_research_family_has_a_texts_hook():
    kinds = ("simpletom", "worldvaluesbench", "proc2pddl", "ds_critique", "delta_rot")
    assert all(family(kind).texts is not None for kind in (*kinds, "complement_coercion"))


def test_texts_are_the_instance_texts_one_per_row():
    rows = sources.read_jsonl(SIMPLETOM)
    texts = family("simpletom").texts(SIMPLETOM)
    assert texts[0] == f"{rows[0]['story']}\n{rows[0]['question']}" and len(texts) == len(rows)
    ds = EVAL_DATA / "ds_critique" / "example_critique.jsonl"
    (text,) = family("ds_critique").texts(ds)
    assert text.startswith("When Dennis operates his lawnmower") and "1) The question" in text
    stimuli = EVALS_DATA / "complement_coercion_stimuli.jsonl"
    coercion = family("complement_coercion").texts(stimuli)
    assert coercion[:2] == [
        "The novelist began the book late in the long winter.",
        "The novelist wrote the book late in the long winter.",
    ]
    items = sources.read_jsonl(EVALS_DATA / "delta_rot_items.jsonl")
    delta = family("delta_rot").texts(EVALS_DATA / "delta_rot_items.jsonl")
    assert delta[0] == f"{items[0]['action']} {items[0]['update']}" and len(delta) == len(items)
    domains = family("proc2pddl").texts(PROC2PDDL)
    assert len(domains) == 5 and all(domains)
    assert (
        domains[0]
        == (PROC2PDDL / "pddl_data" / "113996609")
        .glob("wikihow-*.txt")
        .__next__()
        .read_text(encoding="utf-8")
        .strip()
    )
    questions = family("worldvaluesbench").texts(WVB)
    samples = (WVB / "probe" / "samples.tsv").read_text(encoding="utf-8").splitlines()
    assert len(questions) == len(samples) - 1
    assert questions[0] == wvb_data.VALUE_QUESTIONS["Q1"][0]


def test_texts_hooks_name_the_bad_row(tmp_path):
    bad = tmp_path / "simpletom.jsonl"
    bad.write_text(json.dumps({"id": "x_aware", "story": "s"}) + "\n")
    with pytest.raises(ValueError, match=r"simpletom.jsonl:1: SimpleToM item lacks question"):
        family("simpletom").texts(bad)
    bad = tmp_path / "ds.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match=r"ds.jsonl:1: .*lacks student_explanation"):
        family("ds_critique").texts(bad)
    bad = tmp_path / "stimuli.jsonl"
    bad.write_text(json.dumps({"item": 1, "condition": "neither"}) + "\n")
    with pytest.raises(ValueError, match=r"stimuli.jsonl:1: needs 'item' and 'condition'"):
        family("complement_coercion").texts(bad)


def _hub_layout(root, rows_by_subset, fmt):
    """The allenai/SimpleToM hub layout: ``<config>/test-00000-of-00001.<fmt>``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for subset, rows in rows_by_subset.items():
        folder = root / subset
        folder.mkdir(parents=True)
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pylist(rows), folder / "test-00000-of-00001.parquet")
        else:
            text = "".join(json.dumps(r) + "\n" for r in rows)
            (folder / "test-00000-of-00001.jsonl").write_text(text)


def test_simpletom_loads_every_released_form(tmp_path):
    from datasets import Dataset, DatasetDict

    from evals.simpletom import SUBSETS, load_items

    rows = sources.read_jsonl(SIMPLETOM)
    by_subset = {s: [{k: v for k, v in r.items() if k != "subset"} for r in rows
                     if r["subset"] == s] for s in SUBSETS}  # fmt: skip
    _hub_layout(tmp_path / "hub", by_subset, "parquet")
    loaded = load_items(tmp_path / "hub")
    assert [r["id"] for r in loaded] == [r["id"] for s in SUBSETS for r in by_subset[s]]
    assert loaded[0]["subset"] == "mental-state-qa" and loaded[0]["choices"] == rows[0]["choices"]
    DatasetDict({"test": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "disk"))
    assert [r["id"] for r in load_items(tmp_path / "disk")] == [r["id"] for r in rows]
    (tmp_path / "flat").mkdir()
    for subset, subset_rows in by_subset.items():
        text = "".join(json.dumps(r) + "\n" for r in subset_rows)
        (tmp_path / "flat" / f"{subset}.jsonl").write_text(text)
    assert len(family("simpletom").texts(tmp_path / "flat")) == len(rows)
    broken = {s: [{"id": "a_b_aware", "story": "s"}] for s in list(SUBSETS)[:1]}
    _hub_layout(tmp_path / "broken", broken, "jsonl")
    with pytest.raises(ValueError, match=r"test-00000-of-00001.jsonl:1: SimpleToM item lacks"):
        load_items(tmp_path / "broken")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no SimpleToM data"):
        load_items(tmp_path / "empty")


def test_proc2pddl_discovers_every_domain_of_the_upstream_layout(tmp_path):
    """A checkout of zharry29/proc2pddl: pddl_data/<id>/ and pddl_evaluation/plan/gold/."""
    from evals.proc2pddl import data as p2data

    root = tmp_path / "proc2pddl"
    kept = ["113996609", "114061278"]
    for domain in kept:
        shutil.copytree(PROC2PDDL / "pddl_data" / domain, root / "pddl_data" / domain)
    gold = root / "pddl_evaluation" / "plan" / "gold"
    gold.mkdir(parents=True)
    for plan in (PROC2PDDL / "gold_plans").glob("*.txt"):
        if plan.name.split("_")[0] in kept:
            shutil.copy(plan, gold / plan.name)
    (root / "pddl_data" / ".cache").mkdir()  # not a domain folder: skipped
    cases, _ = p2data.load(root)
    assert [c.domain_id for c in cases] == kept
    assert [p.name for p in cases[0].problems] == [
        "problem-catch_cook_fish", "problem-clean_water", "problem-escape_island",
        "problem-start_fire",
    ]  # fmt: skip
    assert all(p.gold_plan for c in cases for p in c.problems)
    assert len(family("proc2pddl").texts(root)) == 2
    (root / "pddl_data" / kept[1] / "actions.txt").unlink()
    with pytest.raises(ValueError, match=r"114061278 lacks actions.txt"):
        p2data.load(root)


def test_worldvaluesbench_fixture_is_the_released_layout_and_bad_rows_are_named(tmp_path):
    from evals import worldvaluesbench as wvb
    from evals.registry import get_spec

    items, digests = wvb.load(get_spec("worldvaluesbench::probe"), WVB)
    assert len(items) == 24 and set(digests) == {
        "question_metadata.json", "probe/samples.tsv", "full/full_demographic_qa.tsv",
        "full/full_value_qa.tsv",
    }  # fmt: skip
    bad = tmp_path / "WorldValuesBench"
    shutil.copytree(WVB, bad)
    samples = bad / "probe" / "samples.tsv"
    lines = samples.read_text(encoding="utf-8").splitlines()
    assert lines[3].startswith("Q1\t")
    lines[3] = "Q999" + lines[3][2:]
    samples.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"samples.tsv:4: question 'Q999' is not in"):
        family("worldvaluesbench").texts(bad)


def test_digital_socrates_reads_released_dscb_rows(tmp_path):
    from evals import digital_socrates as ds
    from evals.rowschema import check_file

    dscb = FIXTURES / "ds_critique" / "dscb_format_sample.jsonl"
    card = sources.read_jsonl(EVAL_DATA / "ds_critique" / "example_critique.jsonl")[0]
    (item,) = ds.load_items(dscb)
    assert (item["predictedanswer"], item["answerkey"]) == ("D", "C")
    assert item["gold_critique_model"] == "DS-7B"
    assert (
        item["critique_elements"]["general_suggestion"]
        == (card["critique_elements"]["general_suggestion"])
    )
    assert ds.gold_of(item, "x") == ds.gold_of(card, "y")
    assert family("ds_critique").texts(dscb) == family("ds_critique").texts(
        EVAL_DATA / "ds_critique" / "example_critique.jsonl"
    )
    assert check_file(dscb, ["ds_critique"]) == 1  # the evaldata row check accepts the schema
    # Elements missing from critique_elements are parsed from the critique text.
    row = sources.read_jsonl(dscb)[0]
    del row["critiques"][0]["critique_elements"]["explanation_score"]
    assert ds.from_dscb(row, "w")["critique_elements"]["explanation_score"] == 2
    bad = tmp_path / "dscb.jsonl"
    bad.write_text(json.dumps({**row, "critiques": []}) + "\n")
    with pytest.raises(ValueError, match=r"dscb.jsonl:1: 'critiques' must list critiques"):
        ds.load_items(bad)
    del row["gold_answer"]
    bad.write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"dscb.jsonl:1: DSCB row lacks gold_answer"):
        ds.load_items(bad)
