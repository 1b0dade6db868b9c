"""Register one ``sources`` entry: resolve its files, hash and count each, write source.json.

The data is not copied (corpora are terabytes): the artifact is the record of which bytes were
read (absolute path, size, blake3, positions per file), so lineage reaches raw bytes and
a changed file is detected by its hash. Readers (stages/source/readers.py) give the records.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reprolm.hashing import DIGEST_ALGORITHM, hash_file, hash_payload, payload_digest
from reprolm.runner import JobError
from stages.common.job import Input, JobContext
from stages.source.files import SourceError, resolve_files
from stages.source.survey import SurveyError, check_usable, survey

RECORD_NAME = "source.json"
DEFAULTS = {"text_key": "text", "messages_key": "messages", "weight": None}
COPIED = ("kind", "name", "format", "path", "license", "split", "verifier", "filters")


def describe_file(path: Path, fmt: str, source: dict) -> dict:
    """``{path, size, blake3, rows}`` of one input (no time: a copy of the same bytes on another
    machine is the same source); an hf_disk directory is hashed as
    a payload (sorted relative path + file hash pairs) and lists its ``members``."""
    if path.is_dir():
        members = hash_payload(path)
        stats = [(path / rel).stat() for rel in members]
        entry = {
            "path": str(path),
            "size": sum(s.st_size for s in stats),
            DIGEST_ALGORITHM: payload_digest(members),
        }
    else:
        stat = path.stat()
        entry = {
            "path": str(path),
            "size": stat.st_size,
            DIGEST_ALGORITHM: hash_file(path),
        }
        members = None
    entry.update(survey(path, fmt, source))  # rows counted and checked in one read
    if members is not None:
        entry["members"] = {
            rel: {"size": m["size"], DIGEST_ALGORITHM: m["hash"]} for rel, m in members.items()
        }
    return entry


def source_record(config: dict) -> dict:
    """The content of source.json for a job config (files hashed and counted)."""
    record = {key: config.get(key) for key in COPIED}
    if config.get("dataset_verifiers"):  # only when set: records of other sources are unchanged
        record["dataset_verifiers"] = dict(config["dataset_verifiers"])
    for key, default in DEFAULTS.items():
        record[key] = config.get(key, default)
    if config.get("ratio") is not None:  # only when set: records without one are unchanged
        record["ratio"] = config["ratio"]
    fmt, source = config["format"], {**DEFAULTS, **config}
    paths = resolve_files(config["path"], fmt)
    with ThreadPoolExecutor(max_workers=max(1, int(config.get("threads") or 1))) as pool:
        files = list(pool.map(lambda p: describe_file(p, fmt, source), paths))
    check_usable(files, source)
    for entry in files:
        entry.pop("usable"), entry.pop("unusable", None)
    record["files"] = files
    record["malformed"] = sum(f["malformed"] for f in files)
    record["rows"] = sum(f["rows"] for f in files)
    record["bytes"] = sum(f["size"] for f in files)
    return record


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Write ``output_dir/source.json``; metrics: files, rows, bytes."""
    del inputs, context  # a source artifact has no inputs
    try:
        record = source_record(config)
    except (SourceError, SurveyError) as error:
        raise JobError(str(error)) from None
    for entry in record["files"]:
        for line in entry["first_malformed"]:
            print(f"source: malformed (kept as a reject for curate): {line}", file=sys.stderr)
    text = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (Path(output_dir) / RECORD_NAME).write_text(text, encoding="utf-8")
    keys = ("rows", "bytes", "malformed")
    return {"files": len(record["files"]), **{key: record[key] for key in keys}}
