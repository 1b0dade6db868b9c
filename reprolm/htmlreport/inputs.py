"""The finished run a report shows: its artifacts by stage, read through the bounded readers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolm.hashing import MANIFEST_NAME
from reprolm.jsonfile import JSONFileError, read_json
from reprolm.manifest import ManifestError, read_manifest
from reprolm.stagetable import STAGE_TABLE

# Payload JSON files the report reads (log histories, decontamination records) are a few MB
# at most; the bound keeps a hostile file from exhausting memory.
MAX_PAYLOAD_JSON_BYTES = 256 << 20
MAX_PAYLOAD_JSON_DEPTH = 64
STAGE_ORDER = tuple(entry.name for entry in STAGE_TABLE)


class ReportInputError(ValueError):
    """An artifact the report reads is missing or malformed (the message names the file)."""


@dataclass(frozen=True)
class Artifact:
    """One finished artifact: its directory and manifest."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def stage(self) -> str:
        return str(self.manifest["stage"])

    @property
    def label(self) -> str:
        return str(self.manifest.get("label") or self.stage)

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    @property
    def name(self) -> str:
        """``stage`` or ``stage/label`` (evaluate jobs: ``evaluate/sft``)."""
        return self.stage if self.label == self.stage else f"{self.stage}/{self.label}"

    def json(self, relative: str) -> Any:
        """A JSON file of the payload (None when the artifact has none at ``relative``)."""
        path = self.directory / relative
        try:
            return read_json(
                path, max_bytes=MAX_PAYLOAD_JSON_BYTES, max_depth=MAX_PAYLOAD_JSON_DEPTH
            )
        except FileNotFoundError:
            return None
        except JSONFileError as error:
            raise ReportInputError(f"{error} (a payload file of {self.directory})") from None

    def jsonl(self, relative: str) -> list[Any] | None:
        """The rows of a JSONL payload file (None when absent), bounded as ``json`` is."""
        path = self.directory / relative
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_PAYLOAD_JSON_BYTES:
            raise ReportInputError(f"{path}: larger than {MAX_PAYLOAD_JSON_BYTES} bytes")
        rows = []
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            try:
                rows.append(json.loads(line))
            except ValueError as error:
                raise ReportInputError(f"{path}:{number}: not valid JSON ({error})") from None
        return rows


@dataclass
class Run:
    """The artifacts of one recipe's run, in pipeline order."""

    name: str
    artifacts: list[Artifact] = field(default_factory=list)

    def stage(self, stage: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.stage == stage]

    def one(self, stage: str) -> Artifact | None:
        found = self.stage(stage)
        return found[0] if found else None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else empty (a payload file of another shape shows
    nothing rather than failing the page)."""
    return value if isinstance(value, dict) else {}


def _rank(name: str) -> int:
    return STAGE_ORDER.index(name) if name in STAGE_ORDER else len(STAGE_ORDER)


def _order(artifact: Artifact) -> tuple[int, int, str]:
    """Pipeline order; an evaluate job's label is its checkpoint, so those follow it too."""
    return (_rank(artifact.stage), _rank(artifact.label), artifact.label)


def load_run(paths: Iterable[Path], name: str) -> Run:
    """The run of the given artifact directories (or their ``provenance.json`` files)."""
    artifacts = []
    for path in paths:
        directory = path.parent if path.name == MANIFEST_NAME else path
        try:
            artifacts.append(Artifact(directory, read_manifest(directory)))
        except ManifestError as error:
            raise ReportInputError(str(error)) from None
    return Run(name=name, artifacts=sorted(artifacts, key=_order))
