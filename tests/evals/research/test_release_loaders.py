"""Loaders of the research benchmarks' released data formats, on small fixtures in those
formats (tests/fixtures/<name>/, each with a SOURCE.md): the rows they give, clear errors for
bad files, and the family's ``texts`` hook and scoring run on them."""

from __future__ import annotations

import json
import shutil

import pytest

from evals import delta_rot
from evals.families import family
from reprolm.cli import main
from tests.evals.research.conftest import FIXTURES

DROT = FIXTURES / "delta_rot"


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code, capsys.readouterr().out


# ---------------------------------------------------------------- δ-Rules-of-Thumb


def test_delta_rot_reads_both_release_tsvs():
    items = delta_rot.read_items(DROT / "d-rules-of-thumb.tsv")
    assert [i["id"] for i in items] == ["0", "1", "2", "3"]  # the pandas index column
    assert [i["update_type"] for i in items] == ["strengthener", "weakener"] * 2
    assert items[0] == {
        "id": "0",
        "action": "setting a fire",
        "update": "in a fire pit at a supervised campsite",
        "update_type": "strengthener",
        "rationale": "A contained campfire is a normal, safe way to cook and keep warm.",
    }
    assert items[3]["update"] == 'after she wrote "private, keep out" on the cover'  # quoted
    gold = delta_rot.read_items(DROT / "critic-gold-data.tsv")
    # only human-validated (context-quality 1) test rows; ids are data row numbers
    assert [(i["id"], i["update_type"]) for i in gold] == [
        ("1", "strengthener"), ("2", "weakener"), ("6", "strengthener"),
    ]  # fmt: skip
    # a folder (a snapshot of the HF repo) reads critic-gold-data.tsv before the 578K rows
    assert delta_rot.locate(DROT) == (DROT / "critic-gold-data.tsv", None)
    texts = family("delta_rot").texts(DROT / "d-rules-of-thumb.tsv")
    assert texts[1] == "setting a fire during a drought with a burn ban in place"
    assert len(family("delta_rot").texts(DROT)) == 3


def test_delta_rot_release_errors_name_file_line_and_column(tmp_path):
    lines = (DROT / "d-rules-of-thumb.tsv").read_text(encoding="utf-8").splitlines(True)
    header = lines[0].split("\t")
    bad = tmp_path / "no-context.tsv"
    bad.write_text("\t".join(h if h != "context" else "ctx" for h in header) + lines[1])
    with pytest.raises(ValueError, match=r"no-context.tsv:1: .*lacks column\(s\) context"):
        delta_rot.read_items(bad)
    variance = header.index("moral-variance")

    def with_variance(value: str) -> list[str]:
        fields = lines[2].rstrip("\n").split("\t")
        fields[variance] = value
        return [lines[0], lines[1], "\t".join(fields) + "\n"]

    bad = tmp_path / "variance.tsv"
    bad.write_text("".join(with_variance("0")))
    with pytest.raises(ValueError, match=r"variance.tsv:3: moral-variance is '0', not one of"):
        delta_rot.read_items(bad)
    bad.write_text("".join(with_variance("-1.0")))  # pandas floats are accepted
    assert delta_rot.read_items(bad)[1]["update_type"] == "weakener"
    bad.write_text(lines[0] + lines[1].rstrip("\n") + "\textra\n")
    with pytest.raises(ValueError, match=r"variance.tsv:2: has 17 fields where the header has 16"):
        delta_rot.read_items(bad)
    bad.write_text(lines[0] + lines[1].rsplit("\t", 1)[0] + "\n")  # the rationale cut off
    with pytest.raises(ValueError, match=r"variance.tsv:2: has 15 fields where the header has 16"):
        delta_rot.read_items(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"needs one of items.jsonl, .*d-rules-of-thumb.tsv"):
        delta_rot.locate(tmp_path / "empty")


def test_delta_rot_classify_and_score_run_on_the_release(chat_model, tmp_path, capsys):
    out = tmp_path / "cls"
    argv = ["eval", "run", "delta_rot::classify", "--model", str(chat_model),
            "--data", str(DROT), "--out", str(out), "--json"]  # fmt: skip
    code, text = run_cli(argv, capsys)
    result = json.loads(text)
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert code == 0 and result["instances"] == 3
    assert [r["gold"] for r in rows] == ["strengthener", "weakener", "strengthener"]
    assert result["spec"]["dataset_rows"] == 3
    # generations scored against the full release file (no critic: distinct-n, well-formed)
    preds = tmp_path / "preds.jsonl"
    items = delta_rot.read_items(DROT / "d-rules-of-thumb.tsv")
    preds.write_text("".join(
        json.dumps({"action": i["action"], "update_type": i["update_type"],
                    "response": f" {i['update']}\nRationale: {i['rationale']}"}) + "\n"
        for i in items
    ))  # fmt: skip
    argv = ["eval", "score", "delta_rot::generate", "--predictions", str(preds),
            "--data", str(DROT / "d-rules-of-thumb.tsv"), "--json"]  # fmt: skip
    code, text = run_cli(argv, capsys)
    scored = json.loads(text)
    assert code == 0 and scored["metrics"]["well_formed"] == 1.0
    assert scored["spec"]["dataset_rows"] == 4 and scored["primary_metric"] == "distinct_2"


# ---------------------------------------------------------------- complement coercion

COERCION = FIXTURES / "complement_coercion"


def _jsonl_head(n: int) -> list[dict]:
    from evals import coercion, sources

    return sources.read_jsonl(sources.bundled(coercion.STIMULI))[:n]


def _strip(rows: list[dict]) -> list[tuple]:
    """What scoring reads of a stimulus row: item (as text), condition, region names and texts."""
    return [(str(r["item"]), r["condition"], [(g["name"], g["text"]) for g in r["regions"]])
            for r in rows]  # fmt: skip


def test_coercion_reads_a_syntaxgym_suite_and_a_sentence_frame_table():
    from evals import coercion

    expected = _strip(_jsonl_head(6))
    for name in ("coercion_suite.json", "coercion_frames.csv"):
        rows = coercion.read_stimuli(COERCION / name)
        assert _strip(rows) == expected, name
        assert coercion.check_stimuli(COERCION / name, rows) == [
            "subject", "verb", "det_noun", "post_noun", "rest",
        ]  # fmt: skip
        texts = family("complement_coercion").texts(COERCION / name)
        assert texts[1] == "The novelist wrote the book late in the long winter."
    rows = coercion.read_stimuli(COERCION / "coercion_frames.csv")
    assert rows[2]["where"].endswith("coercion_frames.csv:4")


def test_coercion_release_errors_name_the_place(tmp_path):
    from evals import coercion

    lines = (COERCION / "coercion_frames.csv").read_text().splitlines(True)
    bad = tmp_path / "frames.csv"
    bad.write_text(lines[0].replace("condition", "cond") + "".join(lines[1:]))
    with pytest.raises(ValueError, match=r"frames.csv:1: .*needs columns item, condition.*cond"):
        coercion.read_stimuli(bad)
    bad.write_text(lines[0] + lines[1].replace(",began,", ",,"))
    with pytest.raises(ValueError, match=r"frames.csv: line 2: region 'verb' is empty"):
        coercion.read_stimuli(bad)
    bad.write_text(lines[0] + lines[1].replace("late in", "early in", 1))
    with pytest.raises(ValueError, match=r"frames.csv:2: 'sentence' .* is not its regions"):
        coercion.read_stimuli(bad)
    bad.write_text(lines[0] + lines[1].replace("coercion", "coerced") + "".join(lines[2:]))
    rows = coercion.read_stimuli(bad)
    with pytest.raises(ValueError, match=r"frames.csv:2: needs 'item' and 'condition'"):
        coercion.check_stimuli(bad, rows)
    suite = json.loads((COERCION / "coercion_suite.json").read_text())
    del suite["items"][1]["conditions"][0]["regions"][4]
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    with pytest.raises(ValueError, match=r"item 2 condition 'coercion': region numbers"):
        coercion.read_stimuli(tmp_path / "suite.json")
    (tmp_path / "suite.json").write_text(json.dumps({"items": []}))
    with pytest.raises(ValueError, match=r"suite.json: .*needs 'region_meta'.*missing: region_me"):
        coercion.read_stimuli(tmp_path / "suite.json")


def test_coercion_scores_the_released_layouts_as_the_jsonl(chat_model, chat_lm, tmp_path):
    """The same sentences in the three layouts give the same region surprisals."""
    from evals import sources
    from evals.families import RunOptions, family_of
    from evals.registry import get_spec

    spec = get_spec("complement_coercion::surprisal")
    jsonl = tmp_path / "head.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in _jsonl_head(6)))
    surprisals = {}
    for data in (jsonl, COERCION / "coercion_suite.json", COERCION / "coercion_frames.csv"):
        out = tmp_path / data.suffix[1:]
        result = family_of(spec).evaluate(spec, chat_model, data, out, RunOptions(lm=chat_lm))
        assert result["instances"] == 6 and "effect_post_noun" in result["metrics"]
        rows = sources.read_jsonl(out / "predictions.jsonl")
        surprisals[data.suffix] = [[g["surprisal_bits"] for g in r["regions"]] for r in rows]
    assert surprisals[".json"] == surprisals[".jsonl"] == surprisals[".csv"]


# ---------------------------------------------------------------- WorldValuesBench

WVB = FIXTURES / "worldvaluesbench" / "WorldValuesBench"


def test_worldvaluesbench_reads_a_released_split_folder():
    from evals import worldvaluesbench as wvb
    from evals.registry import get_spec

    items, digests = wvb.load(get_spec("worldvaluesbench::probe"), WVB / "test")
    # question-major over probe/value_questions.json (Q1, Q57; not Q122); the blank Q1 answer
    # of 200070002 is skipped; "1.0" reads as 1
    assert [(i.question_id, i.participant, i.human) for i in items] == [
        ("Q1", "200070001", 1), ("Q1", "200070003", 2),
        ("Q57", "200070001", 2), ("Q57", "200070002", 1), ("Q57", "200070003", 2),
    ]  # fmt: skip
    # groups as the probe's: continent | settlement | education level (unmapped: as is)
    assert [i.group for i in items[2:]] == [
        "Europe | Urban | Tertiary", "Asia | Rural | Lower Secondary",
        "Asia | Urban | Primary education (ISCED 1)",
    ]  # fmt: skip
    assert items[0].demographics[0] == ("In what country was the interview conducted?", "Germany")
    assert items[0].scale == (1, 4) and [i.index for i in items] == list(range(5))
    assert set(digests) == {
        "question_metadata.json", "test/test_demographic_qa.tsv", "test/test_value_qa.tsv",
        "probe/value_questions.json", "probe/country2continent.csv", "probe/education2level.csv",
    }  # fmt: skip
    texts = family("worldvaluesbench").texts(WVB / "test")
    assert len(texts) == 5 and texts[2].startswith("On a scale of 1 to 2")


def test_worldvaluesbench_probe_answers_from_a_split_and_split_errors(tmp_path):
    from evals import worldvaluesbench as wvb
    from evals.registry import get_spec

    spec = get_spec("worldvaluesbench::probe")
    expected, _ = wvb.load(spec, WVB)
    # Without full/, the probe participants' answers come from the split TSVs (test/ here).
    root = tmp_path / "WorldValuesBench"
    shutil.copytree(WVB, root, ignore=shutil.ignore_patterns("test"))
    (root / "test").mkdir()
    for kind in ("demographic", "value"):
        (root / "full" / f"full_{kind}_qa.tsv").rename(root / "test" / f"test_{kind}_qa.tsv")
    (root / "full").rmdir()
    items, digests = wvb.load(spec, root)
    assert items == expected and "test/test_value_qa.tsv" in digests
    (root / "test" / "test_value_qa.tsv").unlink()
    with pytest.raises(ValueError, match=r"missing full/full_demographic_qa.tsv, .*test/ or"):
        wvb.load(spec, root)
    split = tmp_path / "split" / "test"
    shutil.copytree(WVB / "test", split)
    with pytest.raises(ValueError, match=r"split folder needs .*question_metadata.json beside"):
        wvb.load(spec, split)
    shutil.copy(WVB / "question_metadata.json", split.parent)
    values = split / "test_value_qa.tsv"
    values.write_text(values.read_text().replace("200070002\t\t1", "200070002\t\t7"))
    with pytest.raises(ValueError, match=r"participant 200070002, Q57: answer 7 is outside"):
        wvb.load(spec, split)
    values.write_text(values.read_text().replace("Q57", "Q58"))
    with pytest.raises(ValueError, match=r"test_value_qa.tsv: no column for value question 'Q57'"):
        wvb.load_split(spec, split, questions=["Q57"])
    # without value_questions.json: every value question of the metadata in the TSV
    items, _ = wvb.load_split(spec, WVB / "test", questions=None)
    assert len(items) == 5  # value_questions.json is beside it here
    assert {i.question_id for i in wvb.load_split(spec, split)[0]} == {"Q1", "Q122"}


def test_worldvaluesbench_runs_and_scores_a_split(chat_model, tmp_path, capsys):
    out = tmp_path / "probe"
    argv = ["eval", "run", "worldvaluesbench::probe", "--model", str(chat_model),
            "--data", str(WVB / "test"), "--out", str(out), "--json"]  # fmt: skip
    code, text = run_cli(argv, capsys)
    result = json.loads(text)
    assert code == 0 and result["instances"] == 5
    assert set(result["breakdown"]["questions"]) == {"Q1", "Q57"}
    answers = tmp_path / "answers.tsv"
    answers.write_text(
        "QUESTION_ID\tPARTICIPANT_ID\tSCORE\n"
        "Q1\t200070001\t1\nQ1\t200070003\t2\n"
        "Q57\t200070001\t2\nQ57\t200070002\t1\nQ57\t200070003\t2\n"
    )
    argv = ["eval", "score", "worldvaluesbench:cot::probe", "--predictions", str(answers),
            "--data", str(WVB / "test"), "--json"]  # fmt: skip
    code, text = run_cli(argv, capsys)
    scored = json.loads(text)
    # answers equal to the humans': W1 = 0 for every question
    assert code == 0 and scored["metrics"]["questions_below_threshold"] == 1.0
    assert scored["metrics"]["mean_w1"] == 0.0
