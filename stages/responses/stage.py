"""Copy an outside model's responses into ``responses/`` so they are hashed and have lineage.

An API model (or any model outside the recipe) cannot be rebuilt, but what it produced can be
pinned: the copy makes the responses content-addressed like every artifact, and the job's
config (so its manifest) records what produced them as the user gave it (``produced_by``:
model, provider, date, generation settings, notes). The ``score`` stage scores the copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reprolm.evalplan import dataset_digest, source_path
from stages.common.job import Input, JobContext
from stages.common.jsonl import write_json

RECORD = "responses.json"
PAYLOAD = "responses"
REQUIRED = ("model", "provider", "date")


class ResponsesError(ValueError):
    """The responses or their record cannot be used (the message names the key and the fix)."""


def predictions_path(artifact: Path) -> Path:
    """The responses inside a responses artifact (``responses.json`` names them)."""
    import json

    record = Path(artifact) / RECORD
    if not record.is_file():
        raise ResponsesError(f"{record}: missing; input 'responses' must be a responses artifact")
    return Path(artifact) / json.loads(record.read_text(encoding="utf-8"))["responses"]


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Copy ``config['path']`` to ``responses/``; check its digest; write ``responses.json``."""
    del inputs, context  # a source artifact has none
    produced_by = config["produced_by"]
    missing = [key for key in REQUIRED if not produced_by.get(key)]
    if missing:
        raise ResponsesError(
            f"responses: config key produced_by.{missing[0]} is not set; say what produced the "
            f"responses ({', '.join(REQUIRED)} are required)"
        )
    source = source_path(config["path"])
    if not (source.is_file() or source.is_dir()):
        raise ResponsesError(
            f"responses: config key path={config['path']!r} does not exist; point it at the "
            "responses file or folder"
        )
    digest = dataset_digest(source)
    if digest != config["digest"]:
        raise ResponsesError(
            f"responses: {config['path']} hashes to {digest}, not the planned {config['digest']}: "
            "the file changed since the plan was made; plan again"
        )
    if source.is_dir():
        target = output_dir / PAYLOAD
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))
    else:
        target = output_dir / PAYLOAD / f"{PAYLOAD}{''.join(source.suffixes)}"
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
    record = {
        "responses": target.relative_to(output_dir).as_posix(),
        "task": config["task"],
        "produced_by": produced_by,
        "source": config["path"],
        "blake3": digest,
    }
    write_json(output_dir / RECORD, record)
    files = [p for p in target.rglob("*") if p.is_file()] if target.is_dir() else [target]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
