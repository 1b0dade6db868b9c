"""source stage: files, readers (every format and compression), row conversions, source.json."""

from __future__ import annotations

import gzip
import itertools
import json
import pathlib
import shutil

import blake3
import pytest

from stages.common.job import JobContext
from stages.source.files import SourceError, resolve_files
from stages.source.readers import Record, Reject, count_rows, iter_records
from stages.source.schemas import RowError, to_internal
from stages.source.stage import run

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "sources"
GSM8K = FIXTURES / "gsm8k_test20.jsonl"


def rows_of(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


def build_copies(src: pathlib.Path, tmp: pathlib.Path) -> dict[str, tuple[pathlib.Path, str]]:
    """The same rows as plain / .gz / .zst jsonl, parquet (2-row groups) and hf_disk."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    data, rows = src.read_bytes(), rows_of(src)
    (tmp / "plain.jsonl").write_bytes(data)
    (tmp / "c.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp / "c.jsonl.zst").write_bytes(zstd(data))
    pq.write_table(pa.Table.from_pylist(rows), tmp / "c.parquet", row_group_size=3)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp / "hf"))
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp / "dd"))
    return {
        "plain": (tmp / "plain.jsonl", "jsonl"),
        "gz": (tmp / "c.jsonl.gz", "jsonl"),
        "zst": (tmp / "c.jsonl.zst", "jsonl"),
        "parquet": (tmp / "c.parquet", "parquet"),
        "hf_disk": (tmp / "hf", "hf_disk"),
    }


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[pathlib.Path, str]]:
    return build_copies(GSM8K, tmp_path_factory.mktemp("copies"))


def test_every_format_and_compression_yields_the_same_records(copies) -> None:
    expected = rows_of(GSM8K)
    for label, (path, fmt) in copies.items():
        assert count_rows(path, fmt) == 20, label
        items = list(iter_records(path, fmt))
        assert all(isinstance(item, Record) for item in items), label
        assert [item.row for item in items] == expected, label
        assert [item.line for item in items] == list(range(1, 21)), label
        assert {item.file for item in items} == {str(path)}, label


def test_hf_disk_dataset_dict_split(copies) -> None:
    dd = copies["hf_disk"][0].parent / "dd"
    assert [r.row for r in iter_records(dd, "hf_disk", split="test")] == rows_of(GSM8K)
    assert count_rows(dd, "hf_disk", split="test") == 20
    with pytest.raises(SourceError, match="set the source's split to one of test"):
        count_rows(dd, "hf_disk", split="train")
    with pytest.raises(SourceError, match="no split given"):
        list(iter_records(dd, "hf_disk"))


@pytest.mark.parametrize("label", ["plain", "gz", "zst", "parquet", "hf_disk"])
def test_row_ranges_partition_exactly(copies, label: str) -> None:
    path, fmt = copies[label]
    whole = list(iter_records(path, fmt, 0, 20))
    for k in (0, 1, 2, 3, 7, 19, 20):
        assert list(iter_records(path, fmt, 0, k)) + list(iter_records(path, fmt, k, 20)) == whole
    pieces = [list(iter_records(path, fmt, a, min(a + 4, 20))) for a in range(0, 20, 4)]
    assert [r for piece in pieces for r in piece] == whole
    assert list(iter_records(path, fmt, 5, 5)) == []


BROKEN_LINES = {  # physical line -> (content, what the reason must say)
    2: (b'{"text": "cut', "malformed JSON: Unterminated string"),
    4: (b'{"text": "caf\xe9"}', "invalid UTF-8 at byte offset"),
    5: (b"[1, 2]", "JSON list where an object was expected"),
    7: (b"not json at all", "malformed JSON: Expecting value"),
    9: (b'"just a string"', "JSON str where an object was expected"),
    10: (b'{"text": "half \\ud800 pair"}', "lone surrogate"),
}


def broken_jsonl() -> bytes:
    """Lines 1..11 with blank lines 3 and 8 (no positions) and the broken lines above."""
    lines = []
    for number in range(1, 12):
        if number in BROKEN_LINES:
            lines.append(BROKEN_LINES[number][0])
        elif number in (3, 8):
            lines.append(b"   \t")
        else:
            lines.append(json.dumps({"text": f"line {number}"}).encode())
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_broken_lines_are_counted_exactly(tmp_path: pathlib.Path, suffix: str) -> None:
    data = broken_jsonl()
    encode = {".jsonl": bytes, ".jsonl.gz": gzip.compress, ".jsonl.zst": zstd}[suffix]
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(encode(data))
    assert count_rows(path, "jsonl") == 9  # 11 lines, 2 blank
    items = list(iter_records(path, "jsonl"))
    rejects = {r.line: r for r in items if isinstance(r, Reject)}
    assert sorted(rejects) == sorted(BROKEN_LINES)
    for line, (_, reason) in BROKEN_LINES.items():
        assert reason in rejects[line].reason and rejects[line].file == str(path)
    records = [r for r in items if isinstance(r, Record)]
    assert [r.line for r in records] == [1, 6, 11]
    assert [r.row["text"] for r in records] == ["line 1", "line 6", "line 11"]
    offset = data.index(b"caf\xe9") + 3
    assert f"byte offset {offset} " in rejects[4].reason


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_truncated_stream(tmp_path: pathlib.Path, suffix: str) -> None:
    import hashlib

    noise = [hashlib.sha256(str(i).encode()).hexdigest() * 4 for i in range(3000)]
    data = b"".join(
        json.dumps({"text": f"doc {i} {noise[i]}"}).encode() + b"\n" for i in range(3000)
    )
    packed = gzip.compress(data) if suffix.endswith("gz") else zstd(data)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(packed[: len(packed) // 2])
    items = list(iter_records(path, "jsonl"))
    assert count_rows(path, "jsonl") == len(items)
    *good, last = items
    assert all(isinstance(r, Record) for r in good) and 0 < len(good) < 3000
    assert [r.row["text"].split()[1] for r in good] == [str(i) for i in range(len(good))]
    kind = "gzip" if suffix.endswith("gz") else "zstd"
    assert isinstance(last, Reject) and last.line == len(good) + 1
    assert last.reason.startswith(f"truncated {kind} stream: ")
    n = len(items)
    assert (
        list(iter_records(path, "jsonl", 0, n - 1)) + list(iter_records(path, "jsonl", n - 1, n))
        == items
    )


def test_empty_files(tmp_path: pathlib.Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cases = {
        "e.jsonl": b"",
        "blank.jsonl": b"\n  \n",
        "e.jsonl.gz": gzip.compress(b""),
        "e.jsonl.zst": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert count_rows(tmp_path / name, "jsonl") == 1, name
        assert list(iter_records(tmp_path / name, "jsonl")) == [
            Reject(str(tmp_path / name), 0, "empty file")
        ]
        assert list(iter_records(tmp_path / name, "jsonl", 1)) == []
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "e.parquet")
    assert count_rows(tmp_path / "e.parquet", "parquet") == 1
    assert [r.reason for r in iter_records(tmp_path / "e.parquet", "parquet")] == ["empty file"]
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert count_rows(tmp_path / "bad.parquet", "parquet") == 1
    (reject,) = iter_records(tmp_path / "bad.parquet", "parquet")
    assert reject.line == 0 and reject.reason.startswith("unreadable parquet file")


def test_resolve_files(tmp_path: pathlib.Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for rel in ("d/b.jsonl.zst", "d/a.jsonl", "d/sub/c.jsonl.gz", "d/notes.txt", "d/x.parquet"):
        (tmp_path / rel).write_bytes(b"")
    names = [
        p.relative_to(tmp_path).as_posix() for p in resolve_files(str(tmp_path / "d"), "jsonl")
    ]
    assert names == ["d/a.jsonl", "d/b.jsonl.zst", "d/sub/c.jsonl.gz"]
    globbed = resolve_files(str(tmp_path / "d" / "**" / "*.jsonl*"), "jsonl")
    assert [p.name for p in globbed] == ["a.jsonl", "b.jsonl.zst", "c.jsonl.gz"]
    assert resolve_files(str(tmp_path / "d" / "x.parquet"), "parquet") == [
        (tmp_path / "d" / "x.parquet").resolve()
    ]
    with pytest.raises(SourceError, match="no such file or directory"):
        resolve_files(str(tmp_path / "missing.jsonl"), "jsonl")
    with pytest.raises(SourceError, match="matches no parquet input"):
        resolve_files(str(tmp_path / "d" / "*.jsonl"), "parquet")
    with pytest.raises(SourceError, match="not a directory written by datasets' save_to_disk"):
        resolve_files(str(tmp_path / "d"), "hf_disk")


def test_source_stage_records_bytes_rows_and_hashes(tmp_path: pathlib.Path, copies) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(copies["gz"][0], data_dir / "a.jsonl.gz")
    (data_dir / "b.jsonl").write_bytes(broken_jsonl())
    out = tmp_path / "out"
    out.mkdir()
    config = {
        "kind": "pretrain",
        "name": "web",
        "path": str(data_dir),
        "format": "jsonl",
        "text_key": "question",
        "license": "MIT",
        "seed": 1,
        "threads": 2,
    }
    metrics = run(config, {}, out, JobContext())
    record = json.loads((out / "source.json").read_text("utf-8"))
    files = [data_dir / "a.jsonl.gz", data_dir / "b.jsonl"]
    assert [f["path"] for f in record["files"]] == [str(p.resolve()) for p in files]
    assert [f["blake3"] for f in record["files"]] == [
        blake3.blake3(p.read_bytes()).hexdigest() for p in files
    ]
    assert [f["size"] for f in record["files"]] == [p.stat().st_size for p in files]
    assert [f["rows"] for f in record["files"]] == [20, 9]
    assert record["rows"] == 29 and record["bytes"] == sum(p.stat().st_size for p in files)
    assert (record["kind"], record["name"], record["path"], record["license"]) == (
        "pretrain",
        "web",
        str(data_dir),
        "MIT",
    )
    assert (record["text_key"], record["messages_key"], record["weight"]) == (
        "question",
        "messages",
        None,
    )
    assert metrics == {"files": 2, "rows": 29, "bytes": record["bytes"], "malformed": 6}
    assert sorted(p.name for p in out.iterdir()) == ["source.json"]  # the data is not copied


def test_source_stage_hf_disk(tmp_path: pathlib.Path, copies) -> None:
    path = copies["hf_disk"][0]
    config = {"kind": "pretrain", "name": "wiki", "path": str(path), "format": "hf_disk"}
    config["text_key"] = "question"  # the GSM8K copy has no 'text' column (refused without)
    run(config, {}, tmp_path, JobContext())
    (entry,) = json.loads((tmp_path / "source.json").read_text("utf-8"))["files"]
    assert entry["path"] == str(path.resolve()) and entry["rows"] == 20
    members = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert sorted(entry["members"]) == members
    for rel, member in entry["members"].items():
        assert member["blake3"] == blake3.blake3((path / rel).read_bytes()).hexdigest()


def test_source_schema_validates_a_job_config() -> None:
    import yaml

    from reprolm.recipe import SCHEMA_DIR, RecipeError, validate

    schema = yaml.safe_load((SCHEMA_DIR / "source.schema.yaml").read_text("utf-8"))
    filled = validate({"kind": "sft", "name": "t", "path": "/d", "format": "hf_disk"}, schema, "c")
    assert (filled["text_key"], filled["messages_key"], filled["weight"]) == (
        "text",
        "messages",
        None,
    )
    with pytest.raises(RecipeError, match="format"):
        validate({"kind": "sft", "name": "t", "path": "/d", "format": "csv"}, schema, "c")


SOURCE = {"name": "src", "text_key": "text", "messages_key": "messages"}


def test_to_internal_pretrain() -> None:
    row = rows_of(GSM8K)[0]
    out = to_internal("pretrain", row, dict(SOURCE, text_key="question"), 0)
    assert out == {"id": "src/0", "text": row["question"], "source": "src"}
    assert to_internal("pretrain", {"id": 7, "text": "a"}, SOURCE, 3)["id"] == "src/7"
    assert to_internal("pretrain", {"id": None, "text": "a"}, SOURCE, 3)["id"] == "src/3"
    for row, reason in (
        ({"body": "x"}, "no text field 'text'"),
        ({"text": 3}, "is int, not a string"),
        ({"text": " "}, "'text' is empty"),
    ):
        with pytest.raises(RowError, match=reason):
            to_internal("pretrain", row, SOURCE, 0)


def test_to_internal_sft() -> None:
    rows = rows_of(FIXTURES / "tulu3_sft.jsonl")
    out = [to_internal("sft", row, SOURCE, i) for i, row in enumerate(rows)]
    assert out[0] == {"id": "src/oasst1_0", "messages": rows[0]["messages"], "source": "src"}
    assert out[2]["messages"][-1] == {"role": "assistant", "content": "84 / 4 = 21."}
    cases = (
        ({"messages": []}, "not a non-empty list"),
        ({"conv": []}, "no field 'messages'"),
        ({"messages": [{"role": "bot", "content": "x"}]}, r"messages\[0\].role is 'bot'"),
        ({"messages": [{"role": "user", "content": 1}]}, r"messages\[0\].content is int"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant turn"),
    )
    for row, reason in cases:
        with pytest.raises(RowError, match=reason):
            to_internal("sft", row, SOURCE, 0)
    assert to_internal("sft", {"conv": rows[0]["messages"]}, dict(SOURCE, messages_key="conv"), 0)


def test_to_internal_preference() -> None:
    rows = rows_of(FIXTURES / "tulu3_preference.jsonl")
    out = to_internal("preference", rows[0], SOURCE, 0)
    assert out == {
        "id": "src/pref_0",
        "prompt": [{"role": "user", "content": "How many legs does a spider have?"}],
        "chosen": [{"role": "assistant", "content": "A spider has eight legs."}],
        "rejected": [{"role": "assistant", "content": "A spider has six legs."}],
        "source": "src",
    }
    assert [m["role"] for m in to_internal("preference", rows[3], SOURCE, 3)["prompt"]] == [
        "system",
        "user",
    ]
    internal = {k: out[k] for k in ("prompt", "chosen", "rejected")}
    assert to_internal("preference", internal, SOURCE, 9) == dict(out, id="src/9")
    answers_only = {"prompt": "Q?", "chosen": out["chosen"], "rejected": out["rejected"]}
    assert to_internal("preference", answers_only, SOURCE, 0)["prompt"] == [
        {"role": "user", "content": "Q?"}
    ]
    differ = dict(rows[0], rejected=[{"role": "user", "content": "other"}, *out["rejected"]])
    with pytest.raises(RowError, match="do not share their prompt turns"):
        to_internal("preference", differ, SOURCE, 0)
    with pytest.raises(RowError, match="'chosen' does not end in an assistant turn"):
        to_internal("preference", dict(rows[0], chosen=rows[0]["chosen"][:1]), SOURCE, 0)
    with pytest.raises(RowError, match="no field 'rejected'"):
        to_internal("preference", {"chosen": rows[0]["chosen"]}, SOURCE, 0)


def test_to_internal_rlvr() -> None:
    from evals.verifiers import get_verifier

    rows = rows_of(FIXTURES / "rlvr_mixed.jsonl")
    out = [to_internal("rlvr", row, SOURCE, i) for i, row in enumerate(rows)]
    assert [o["verifier"] for o in out] == [
        "gsm8k_tulu",  # open-instruct's gsm8k rows: Tulu 3's rule
        "gsm8k_tulu",
        "numeric_answer",
        "ifeval",
        "ifeval",
    ]
    chosen = dict(SOURCE, dataset_verifiers={"GSM8K": "numeric_answer"})
    assert to_internal("rlvr", rows[0], chosen, 0)["verifier"] == "numeric_answer"
    assert get_verifier("gsm8k_tulu")("So the answer is 18.", out[0]["ground_truth"]) == 1.0
    assert [o["ground_truth"] for o in out[:3]] == ["18", "3", "15"]
    assert [o["id"] for o in out] == [f"src/{i}" for i in range(5)]
    assert out[0]["prompt"] == rows[0]["messages"]
    assert get_verifier("numeric_answer")("So the answer is 18.", out[0]["ground_truth"]) == 1.0
    assert get_verifier("ifeval")("a calm red sky", out[3]["ground_truth"]) == 1.0
    answer = "plants use the light of the sun to make sugar from water and carbon dioxide."
    assert get_verifier("ifeval")(answer, out[4]["ground_truth"]) == 1.0
    assert get_verifier("ifeval")(answer.title(), out[4]["ground_truth"]) == 0.5
    prompt = rows[0]["messages"]
    assert (
        to_internal(
            "rlvr",
            {"messages": prompt, "ground_truth": "#### 1,234"},
            dict(SOURCE, verifier="numeric_answer"),
            0,
        )["ground_truth"]
        == "1,234"  # as written: the verifier normalizes when it scores
    )
    own = {"messages": prompt, "ground_truth": "5", "verifier": "max_words", "dataset": "gsm8k"}
    assert to_internal("rlvr", own, SOURCE, 0)["verifier"] == "max_words"
    assert (
        to_internal("rlvr", own, dict(SOURCE, verifier="numeric_answer"), 0)["verifier"]
        == "numeric_answer"
    )
    cases = (
        (
            {"messages": prompt, "ground_truth": "1", "dataset": "code"},
            "no verifier for dataset 'code'.*set the source's verifier or dataset_verifiers",
        ),
        (
            {"messages": prompt, "ground_truth": "\\frac{1}{2}", "dataset": "MATH"},
            "is not a number",
        ),
        ({"messages": prompt, "dataset": "gsm8k"}, "no field 'ground_truth'"),
        (
            {"messages": prompt, "ground_truth": {"a": 1}, "dataset": "gsm8k"},
            "ground_truth is dict",
        ),
        (
            {
                "messages": prompt,
                "ground_truth": '{"func_name": "validate_lowercase"}',
                "dataset": "ifeval",
            },
            "open-instruct function 'validate_lowercase'",
        ),
        (
            {
                "messages": [*prompt, {"role": "assistant", "content": "18"}],
                "ground_truth": "18",
                "dataset": "gsm8k",
            },
            "ends in an assistant turn",
        ),
    )
    for row, reason in cases:
        with pytest.raises(RowError, match=reason):
            to_internal("rlvr", row, SOURCE, 0)


def test_conversions_agree_across_formats(tmp_path: pathlib.Path) -> None:
    for name, kind in (
        ("tulu3_sft", "sft"),
        ("tulu3_preference", "preference"),
        ("rlvr_mixed", "rlvr"),
    ):
        sub = tmp_path / name
        sub.mkdir()
        per_format = []
        for path, fmt in build_copies(FIXTURES / f"{name}.jsonl", sub).values():
            items = list(iter_records(path, fmt))
            per_format.append([to_internal(kind, r.row, SOURCE, i) for i, r in enumerate(items)])
        assert all(rows == per_format[0] for rows in per_format), name


def test_global_positions_of_a_source(tmp_path: pathlib.Path) -> None:
    """curate's feeds number a source's records across its files; any cut of the range into
    shards yields exactly the whole sequence."""
    from stages.common.job import Input
    from stages.curate.feeds import iter_positions, source_feed
    from stages.source.stage import source_record

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(broken_jsonl())  # 9 positions
    shutil.copy(GSM8K, data / "b.jsonl")  # 20
    (data / "c.jsonl").write_bytes(b"")  # 1 (empty file)
    record = source_record({"kind": "pretrain", "name": "s", "path": str(data), "format": "jsonl"})
    assert record["rows"] == 30
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "source.json").write_text(json.dumps(record))
    feed = source_feed(Input(artifact))
    paths = [f["path"] for f in record["files"]]
    whole = [(p.index, p.local, p.file.shown, p.item) for p in iter_positions([feed], 0, 30)]
    assert [index for index, *_ in whole] == list(range(30))
    assert [shown for _, _, shown, _ in whole] == [paths[0]] * 9 + [paths[1]] * 20 + [paths[2]]
    assert whole[-1][3] == Reject(paths[2], 0, "empty file")
    for cuts in ((0, 30), (0, 3, 9, 10, 29, 30), tuple(range(31))):
        parts = [
            [(p.index, p.local, p.file.shown, p.item) for p in iter_positions([feed], a, b)]
            for a, b in itertools.pairwise(cuts)
        ]
        assert [item for part in parts for item in part] == whole


def test_concatenated_streams_crlf_and_bom(tmp_path: pathlib.Path) -> None:
    first, second = GSM8K.read_bytes()[:1000], GSM8K.read_bytes()
    first = first[: first.rindex(b"\n") + 1]
    for name, data in (("m.jsonl.gz", gzip.compress(first) + gzip.compress(second)),
                       ("m.jsonl.zst", zstd(first) + zstd(second))):  # fmt: skip
        (tmp_path / name).write_bytes(data)
        items = list(iter_records(tmp_path / name, "jsonl"))
        assert all(isinstance(r, Record) for r in items) and len(items) == first.count(b"\n") + 20
    (tmp_path / "crlf.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "a"}\r\n\r\n{"text": "b"}')
    items = list(iter_records(tmp_path / "crlf.jsonl", "jsonl"))
    assert [(r.line, r.row) for r in items] == [(1, {"text": "a"}), (3, {"text": "b"})]


def test_corrupt_zstd_stream(tmp_path: pathlib.Path) -> None:
    data = b"".join(json.dumps({"text": f"doc {i}"}).encode() + b"\n" for i in range(50))
    packed = bytearray(zstd(data))
    packed[len(packed) // 2] ^= 0xFF
    (tmp_path / "bad.jsonl.zst").write_bytes(bytes(packed))
    items = list(iter_records(tmp_path / "bad.jsonl.zst", "jsonl"))
    assert count_rows(tmp_path / "bad.jsonl.zst", "jsonl") == len(items)
    assert isinstance(items[-1], Reject) and "zstd stream" in items[-1].reason
