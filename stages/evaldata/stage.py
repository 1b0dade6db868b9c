"""evaldata: copy the recipe's spec datasets (and their licenses) into an artifact.

The plan pins each file's blake3 in the config (``digests``); a file that changed since the
plan is refused, so the artifact, its fingerprint and its manifest agree on the bytes. The
payload is what curate decontaminates against and what evaluate's spec runs read.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from reprolm.evalplan import source_path
from reprolm.hashing import hash_file
from stages.common.jsonl import write_json

LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md")


def data_file(artifact: pathlib.Path, name: str) -> pathlib.Path:
    """Where an imported dataset lies in an evaldata artifact."""
    return pathlib.Path(artifact) / "data" / f"{name}.jsonl"


def load_index(artifact: pathlib.Path) -> dict:
    """``evaldata.json`` of an evaldata artifact (the error names what the input must be)."""
    path = pathlib.Path(artifact) / "evaldata.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; input 'evaldata' must be an evaldata artifact")
    return json.loads(path.read_text(encoding="utf-8"))


def _rows(path: pathlib.Path) -> int:
    count = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        count += 1
    return count


def run(config: dict, inputs: dict[str, pathlib.Path], output_dir: pathlib.Path) -> dict:
    """Write data/<name>.jsonl, licenses/<name> and evaldata.json; return row counts."""
    index: dict[str, dict] = {}
    for name, path in sorted(config["files"].items()):
        source = source_path(path)
        if not source.is_file():
            raise FileNotFoundError(f"evaldata.files.{name}: {source} is not a file")
        digest = hash_file(source)
        pinned = config["digests"].get(name)
        if pinned is not None and digest != pinned:
            raise ValueError(
                f"evaldata.files.{name}: {source} changed since the plan (blake3 {digest}, "
                f"planned {pinned}); rerun the workflow so the plan sees the new file"
            )
        target = data_file(output_dir, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        license_file = next(
            (source.parent / n for n in LICENSE_NAMES if (source.parent / n).is_file()), None
        )
        if license_file is not None:
            (output_dir / "licenses").mkdir(exist_ok=True)
            shutil.copyfile(license_file, output_dir / "licenses" / name)
        index[name] = {
            "file": f"data/{name}.jsonl",
            "source": str(path),  # as the recipe names it: no absolute checkout paths
            "blake3": digest,
            "rows": _rows(target),
            "license": f"licenses/{name}" if license_file else None,
            "specs": sorted(s for s, d in config["specs"].items() if d == name),
        }
    write_json(output_dir / "evaldata.json", index)
    return {f"{name}_rows": entry["rows"] for name, entry in index.items()}
