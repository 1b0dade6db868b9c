"""evaldata: copy the recipe's spec datasets (and their licenses) into an artifact.

A dataset is a JSONL file (imported as ``data/<name>.jsonl``), a Parquet file
(``data/<name>.parquet``) or a directory (copied whole to
``data/<name>/``: Proc2PDDL, WorldValuesBench, a δ-RoT items + critic folder). The plan pins
each dataset's digest in the config (``digests``); a dataset that changed since the plan is
refused, so the artifact, its fingerprint and its manifest agree on the bytes. The
payload is what curate decontaminates against and what evaluate's spec runs read.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from evals.rowschema import DatasetError, check_dataset
from reprolm.evalplan import dataset_digest, source_path
from reprolm.runner import JobError
from stages.common.job import Input, JobContext
from stages.common.jsonl import write_json

LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md")


# File formats copied under their own suffix (the loaders tell them apart by it); any other
# file is JSONL, copied as ``<name>.jsonl``.
KEPT_SUFFIXES = (".parquet", ".tsv", ".csv", ".json")


def data_file(artifact: pathlib.Path, name: str) -> pathlib.Path:
    """Where an imported dataset lies in an evaldata artifact (its directory, else its file)."""
    folder = pathlib.Path(artifact) / "data" / name
    if folder.is_dir():
        return folder
    for suffix in KEPT_SUFFIXES:
        kept = folder.with_name(f"{name}{suffix}")
        if kept.is_file():
            return kept
    return folder.with_name(f"{name}.jsonl")


def load_index(artifact: pathlib.Path) -> dict:
    """``evaldata.json`` of an evaldata artifact (the error names what the input must be)."""
    path = pathlib.Path(artifact) / "evaldata.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; input 'evaldata' must be an evaldata artifact")
    return json.loads(path.read_text(encoding="utf-8"))


def find_license(source: pathlib.Path, homes: tuple[pathlib.Path, ...]) -> pathlib.Path | None:
    """A dataset's license: ``LICENSE`` (or .txt/.md) in its folder (a directory dataset: its
    own, else its parent's), else, for a file, the ``LICENSE-<prefix>`` beside it whose
    ``<prefix>`` begins its name (longest first): several bundled files share one folder
    (``evals/data/LICENSE-olmes`` covers ``olmes_arc_challenge_fewshot.jsonl``)."""
    for home in homes:
        for name in LICENSE_NAMES:
            if (home / name).is_file():
                return home / name
    if source.is_dir():
        return None
    prefixed = [p for p in source.parent.glob("LICENSE-*") if p.is_file()]
    matching = [p for p in prefixed if source.name.startswith(p.name.removeprefix("LICENSE-"))]
    return max(matching, key=lambda p: len(p.name), default=None)


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write data/<name>.jsonl (or data/<name>/), licenses/<name> and evaldata.json; return row
    counts (file datasets) and file counts (directory datasets)."""
    index: dict[str, dict] = {}
    for name, path in sorted(config["files"].items()):
        source = source_path(path)
        if not (source.is_file() or source.is_dir()):
            raise FileNotFoundError(f"evaldata.files.{name}: {source}: no such file or directory")
        digest = dataset_digest(source)
        pinned = config["digests"].get(name)
        if pinned is not None and digest != pinned:
            raise ValueError(
                f"evaldata.files.{name}: {source} changed since the plan (blake3 {digest}, "
                f"planned {pinned}); rerun the workflow so the plan sees the new file"
            )
        # Checked at the user's file before copying: errors name it, never the scratch copy.
        spec_ids = sorted(s for s, d in config["specs"].items() if d == name)
        try:
            rows = check_dataset(source, spec_ids)
        except DatasetError as error:
            raise JobError(f"evaldata.files.{name}:\n{error}") from None
        target = output_dir / "data" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
            count = {"files": sum(1 for p in target.rglob("*") if p.is_file())}
            homes = (source, source.parent)  # a folder's own LICENSE, else its parent's
        else:
            suffix = source.suffix if source.suffix in KEPT_SUFFIXES else ".jsonl"
            target = target.with_name(f"{name}{suffix}")
            shutil.copyfile(source, target)
            count = {"rows": rows}
            homes = (source.parent,)
        license_file = find_license(source, homes)
        if license_file is not None:
            (output_dir / "licenses").mkdir(exist_ok=True)
            shutil.copyfile(license_file, output_dir / "licenses" / name)
        index[name] = {
            "file": target.relative_to(output_dir).as_posix() + ("/" if source.is_dir() else ""),
            "source": str(path),  # as the recipe names it: no absolute checkout paths
            "blake3": digest,
            **count,
            "license": f"licenses/{name}" if license_file else None,
            "specs": sorted(s for s, d in config["specs"].items() if d == name),
        }
    write_json(output_dir / "evaldata.json", index)
    return {
        f"{name}_{unit}": entry[unit]
        for name, entry in index.items()
        for unit in ("rows", "files")
        if unit in entry
    }
