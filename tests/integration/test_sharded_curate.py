"""Sharded curation for real: a recipe's own corpora (zstd JSONL and Parquet) through source,
curate_shard and curate jobs under Snakemake, up to the tokenized shards.

* 1 shard and 3 shards give the same curate and tokenize digests;
* planted GSM8K / IFEval items (the evaldata spec sets) are removed, near-duplicates clustered,
  broken lines rejected with the user's file:line;
* a shard job SIGKILLed mid-way (its partial output being written) fails the run; the rerun
  redoes only that shard job (plus what follows it) and ends on the same digest.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.support import MICRO, SNAKEMAKE, checkout_env, make_checkout, reprolm, run_snakemake

pytestmark = pytest.mark.slow

WORDS = [f"{a}{b}" for a in ("ba", "ko", "mi", "tu", "re", "sa", "lo", "ne") for b in range(250)]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def document(rng: random.Random) -> str:
    return " ".join(sentence(rng, rng.randint(8, 14)) for _ in range(rng.randint(3, 5)))


def write_zst_jsonl(path: Path, lines: list[str]) -> None:
    import zstandard

    path.write_bytes(zstandard.ZstdCompressor().compress("".join(lines).encode("utf-8")))


@pytest.fixture(scope="module")
def corpus_checkout(tmp_path_factory) -> dict:
    """A checkout with a corpus: two zstd JSONL web files, one Parquet books file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = make_checkout(tmp_path_factory.mktemp("sharded") / "repo")
    rng = random.Random(7)
    gsm8k = [json.loads(x) for x in (where / "data/eval/gsm8k/test_sample.jsonl").open()][:3]
    web = [{"id": f"w{i}", "text": document(rng)} for i in range(6000)]
    web[100]["text"] += " " + gsm8k[0]["question"]  # verbatim inside a longer document
    web[2500]["text"] = gsm8k[1]["question"].upper().replace(",", "")  # reformatted
    near = web[300]["text"].split()
    near[5], near[20] = "changed", "words"
    web[4000]["text"] = " ".join(near)  # a near-duplicate of web[300]
    web[4500]["text"] = web[301]["text"]  # an exact duplicate of web[301]
    lines = [json.dumps(row) + "\n" for row in web]
    lines[1234] = '{"id": "broken", "text": \n'  # malformed JSON: user's line 1235
    (where / "corpus" / "web").mkdir(parents=True)
    write_zst_jsonl(where / "corpus/web/part-0.jsonl.zst", lines[:3000])
    write_zst_jsonl(where / "corpus/web/part-1.jsonl.zst", lines[3000:])
    books = pa.table({"content": [document(rng) for _ in range(1500)]})
    pq.write_table(books, where / "corpus/books.parquet", row_group_size=200)

    def recipe(name: str, shards: int) -> str:
        value = yaml.safe_load((where / MICRO).read_text())
        value["name"] = name
        value["sources"] = {
            "pretrain": [
                {
                    "name": "web",
                    "path": str(where / "corpus/web/*.jsonl.zst"),
                    "format": "jsonl",
                    "license": "CC0-1.0",
                },
                {
                    "name": "books",
                    "path": str(where / "corpus/books.parquet"),
                    "format": "parquet",
                    "text_key": "content",
                },
            ]
        }
        value["curate"] = {"shards": shards, "shards_per_job": 1, "fuzzy_dedup": {"enabled": True}}
        path = where / "config" / f"{name}.yaml"
        path.write_text(yaml.safe_dump(value))
        return f"config/{name}.yaml"

    return {"where": where, "recipe": recipe, "web": web, "gsm8k": gsm8k}


def manifests(where: Path, stage: str) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((where / "artifacts" / stage).glob("*/provenance.json"))
    }


def digest_of(where: Path, stage: str, recipe: str) -> str:
    from reprolm.plan import load_plan

    job = load_plan(where / recipe).by_stage(stage)[0]
    return json.loads((where / job.manifest).read_text())["digest"]


def test_one_or_three_shards_same_digests_and_decisions(corpus_checkout) -> None:
    where, recipe = corpus_checkout["where"], corpus_checkout["recipe"]
    one, three = recipe("one", 1), recipe("three", 3)
    run_snakemake(where, "all", "--until", "tokenize", recipe=three)
    run_snakemake(where, "all", "--until", "tokenize", recipe=one)
    assert len(manifests(where, "curate_shard")) == 3
    assert len(manifests(where, "curate")) == 2  # two fingerprints ...
    assert digest_of(where, "curate", one) == digest_of(where, "curate", three)  # ... one payload
    assert digest_of(where, "tokenize", one) == digest_of(where, "tokenize", three)

    from reprolm.plan import load_plan

    curate = where / load_plan(where / three).by_stage("curate")[0].artifact_dir
    decisions = [json.loads(x) for x in (curate / "decisions/pretrain.jsonl").open()]
    by_id = {d.get("id"): d for d in decisions}
    assert by_id["web/w100"]["decision"] == "decontaminated"
    assert by_id["web/w2500"]["decision"] == "decontaminated"
    assert by_id["web/w4000"]["decision"] == "fuzzy_duplicate"
    assert by_id["web/w4000"]["of"] == "web/w300"
    assert by_id["web/w4500"]["decision"] == "exact_duplicate"
    rejected = [d for d in decisions if d["decision"] == "rejected"]
    assert [(Path(d["file"]).name, d["line"]) for d in rejected] == [("part-0.jsonl.zst", 1235)]
    assert len(decisions) == 6000 + 1500
    report = json.loads((curate / "curation.json").read_text())["pretrain"]
    assert report["sources"]["web"]["rejected"] == 1
    assert report["sources"]["books"]["documents_in"] == 1500
    tokenize = where / load_plan(where / three).by_stage("tokenize")[0].artifact_dir
    index = json.loads((tokenize / "shards/index.json").read_text())
    assert set(index["sources"]) == {"web", "books", "midtrain"}  # the mix in tokens
    assert sum(s["tokens"] for s in index["sources"].values()) == sum(
        f["tokens"] for f in index["files"]
    )
    assert index["sources"]["books"]["documents"] == report["sources"]["books"]["documents_out"]

    # audit re-reads the corpus files behind the source artifacts, down to the raw bytes.
    audited = reprolm(where, "audit", "--json", str(tokenize))
    nodes = {n["id"]: n for n in json.loads(audited.stdout)["nodes"]}
    raw = [n for n in nodes.values() if n["stage"] == "source"]
    assert audited.returncode == 0 and len(raw) == 2
    assert all(n["checks"]["raw_data"]["status"] == "ok" for n in raw)
    books = where / "corpus/books.parquet"
    original = books.read_bytes()
    books.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    try:
        tampered = reprolm(where, "audit", str(tokenize))
    finally:
        books.write_bytes(original)
    assert tampered.returncode == 1
    assert "books.parquet changed since its source job hashed it" in tampered.stdout


def test_killed_shard_job_reruns_alone_and_ends_on_the_same_digest(corpus_checkout) -> None:
    where, recipe = corpus_checkout["where"], corpus_checkout["recipe"]
    four = recipe("four", 4)
    command = [*SNAKEMAKE, "--cores", "1", "all", "--until", "curate", "--configfile", four]
    run = subprocess.Popen(
        command, cwd=where, env=checkout_env(where), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        for partial in (where / "artifacts" / "curate_shard").glob(".00002_00003-*.partial-*"):
            if (partial / "shards" / "shard-000002" / "pretrain.jsonl").is_file():
                killed = int(partial.name.rsplit("-", 1)[1])
                os.kill(killed, signal.SIGKILL)
                break
        time.sleep(0.005)
    output = run.communicate(timeout=600)[0]
    assert killed is not None, f"shard 2 was never seen running:\n{output[-3000:]}"
    assert run.returncode != 0
    done_before = {
        name: (where / "artifacts/curate_shard" / name / "provenance.json").stat().st_mtime_ns
        for name in manifests(where, "curate_shard")
        if name.startswith(("00000_", "00001_", "00002_", "00003_"))
        and json.loads((where / "artifacts/curate_shard" / name / "provenance.json").read_text())[
            "config"
        ]["shards"]
        == 4
    }
    assert not any(name.startswith("00002_") for name in done_before)

    rerun = run_snakemake(where, "all", "--until", "curate", recipe=four)
    after = {
        name: (where / "artifacts/curate_shard" / name / "provenance.json").stat().st_mtime_ns
        for name in done_before
    }
    assert after == done_before  # finished shards untouched
    jobs = {
        line.split()[0]: int(line.split()[1])
        for line in (rerun.stdout + rerun.stderr).splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    assert jobs.get("curate_shard") == 4 - len(done_before)
    assert digest_of(where, "curate", four) == digest_of(where, "curate", recipe("one", 1))


def test_a_missing_source_stops_the_workflow_naming_its_entry(corpus_checkout) -> None:
    where, recipe = corpus_checkout["where"], corpus_checkout["recipe"]
    path = where / recipe("missing", 2)
    value = yaml.safe_load(path.read_text())
    value["sources"]["pretrain"][1]["path"] = str(where / "corpus" / "gone.parquet")
    path.write_text(yaml.safe_dump(value))
    done = run_snakemake(where, "-n", recipe="config/missing.yaml", check=False)
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "sources.pretrain[1] (books)" in said and "gone.parquet" in said
    assert "Traceback" not in said
