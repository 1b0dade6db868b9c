"""Hostile manifests are refused, never followed: every command that reads a manifest exits 2
with one line naming the file, never 0 and never a traceback.

Each case rewrites the curate artifact's ``provenance.json`` of a copy of the micro workspace
(the session's finished run), as a file from elsewhere (a DVC remote, a bundle) could be; the
original bytes are put back after the case.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reprolm.hashing import MANIFEST_NAME
from reprolm.manifest import MAX_MANIFEST_BYTES
from reprolm.plan import load_plan
from tests.support import MICRO, clone_workspace, reprolm

pytestmark = pytest.mark.slow

COMMANDS = ("verify", "show", "audit", "lineage", "export-prov", "diff", "rebuild")


@pytest.fixture(scope="module")
def workspace(micro_workspace, tmp_path_factory) -> Path:
    return clone_workspace(micro_workspace, tmp_path_factory.mktemp("hostile") / "w")


def _dirs(workspace: Path) -> tuple[Path, Path, Path]:
    plan = load_plan(workspace / MICRO)
    return tuple(
        workspace / plan.get(stage, stage).artifact_dir for stage in ("curate", "world", "release")
    )


def _edit(change: Callable[[dict], None]) -> Callable[[dict, Path], bytes]:
    def write(manifest: dict, workspace: Path) -> bytes:
        change(manifest)
        return json.dumps(manifest).encode("utf-8")

    return write


def _deep(manifest: dict, _: Path) -> bytes:
    text = json.dumps(manifest)
    return (text[:-1] + ', "deep": ' + "[" * 200_000 + "]" * 200_000 + "}").encode("ascii")


def _not_utf8(manifest: dict, _: Path) -> bytes:
    return (
        json.dumps(manifest)
        .replace('"curate"', '"cur\udcffate"', 1)
        .encode("utf-8", "surrogateescape")
    )


def _duplicate_digest(manifest: dict, _: Path) -> bytes:
    text = json.dumps(manifest)
    return (text[:-1] + ', "digest": "' + "0" * 64 + '"}').encode("ascii")


def _huge(manifest: dict, _: Path) -> bytes:
    return json.dumps(manifest).encode("ascii") + b" " * MAX_MANIFEST_BYTES


def _input_outside(manifest: dict, workspace: Path) -> bytes:
    """The world input pointed at a copy outside the tree (same bytes: it would verify)."""
    world = workspace / manifest["inputs"]["world"]["path"]
    outside = workspace.parent / "outside" / world.name
    if not outside.exists():
        shutil.copytree(world, outside)
    manifest["inputs"]["world"]["path"] = f"../outside/{world.name}"
    return json.dumps(manifest).encode("utf-8")


def _set(path: str, value) -> Callable[[dict, Path], bytes]:
    def change(manifest: dict) -> None:
        *parents, last = path.split(".")
        target = manifest
        for key in parents:
            target = target[key]
        target[last] = value

    return _edit(change)


CASES: dict[str, tuple[Callable[[dict, Path], bytes], str]] = {
    # case: (mutation, what the message must say)
    "nested 200k deep": (_deep, "nested too deeply"),
    "invalid UTF-8": (_not_utf8, "not UTF-8"),
    "truncated JSON": (lambda m, _: json.dumps(m).encode()[:-40], "not valid JSON"),
    "a list, not an object": (lambda m, _: b"[1, 2]", "a JSON object expected"),
    "duplicate key": (_duplicate_digest, "appears twice"),
    "over the size cap": (_huge, "larger than"),
    "inputs a list": (_set("inputs", ["world"]), "inputs: a mapping"),
    "inputs entry a string": (_set("inputs.world", "world"), "inputs.world: a mapping"),
    "files: []": (_set("files", []), "files: a mapping"),
    "files entry null": (
        _edit(lambda m: m["files"].update({"curation.json": None})),
        "files['curation.json']",
    ),
    "files path ../": (
        _edit(lambda m: m["files"].update({"../../x": m["files"]["curation.json"]})),
        "'..' segment",
    ),
    "files path absolute": (
        _edit(lambda m: m["files"].update({"/etc/passwd": {"hash": "0" * 64}})),
        "not a relative POSIX path",
    ),
    "stage ../../x": (_set("stage", "../../x"), "not a known stage"),
    "label ../x": (_set("label", "../x"), "not one safe path component"),
    "fingerprint a glob": (_set("fingerprint", "*"), "fingerprint: '*'"),
    "digest too short": (_set("digest", "abc"), "digest: 'abc'"),
    "code.commit an option": (_set("code.commit", "--upload-pack=touch x"), "code.commit"),
    "code.diff_hash a path": (_set("code.diff_hash", "../../etc/x"), "code.diff_hash"),
    "input path outside the tree": (_input_outside, "leads outside"),
}


def _argv(command: str, curate: Path, world: Path) -> list[str]:
    return [command, str(curate)] + ([str(world)] if command == "diff" else [])


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_refuses_a_hostile_manifest(workspace, case):
    curate, world, _ = _dirs(workspace)
    path = curate / MANIFEST_NAME
    original = path.read_bytes()
    mutate, says = CASES[case]
    path.write_bytes(mutate(json.loads(original), workspace))
    commands = [
        command
        for command in COMMANDS
        # verify and show never follow input paths (the manifest itself is well formed)
        if not (case == "input path outside the tree" and command in ("verify", "show"))
    ]
    try:
        # Two CLI processes at a time (CI has 2 cores); each one's result is checked alike.
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = list(
                pool.map(lambda command: reprolm(workspace, *_argv(command, curate, world)),
                         commands)
            )  # fmt: skip
        for command, done in zip(commands, runs, strict=True):
            said = done.stderr + done.stdout
            assert done.returncode == 2, (case, command, done.returncode, said[-2000:])
            assert "Traceback" not in said, (case, command, said[-2000:])
            assert f"reprolm {command}: " in done.stderr, (case, command, done.stderr[-2000:])
            assert str(path) in said and says in said, (case, command, said[-2000:])
    finally:
        path.write_bytes(original)


def test_a_hostile_upstream_manifest_fails_the_release_audit_with_2(workspace):
    """The release's lineage reaches the curate manifest: it is named, and nothing is 0."""
    curate, _, release = _dirs(workspace)
    path = curate / MANIFEST_NAME
    original = path.read_bytes()
    path.write_bytes(_set("files", [])(json.loads(original), workspace))
    try:
        for command in ("audit", "lineage", "export-prov"):
            done = reprolm(workspace, command, str(release))
            assert done.returncode == 2, (command, done.stderr[-2000:])
            assert str(path) in done.stderr and "Traceback" not in done.stderr
    finally:
        path.write_bytes(original)
    assert reprolm(workspace, "audit", str(release)).returncode in (0, 1)  # restored: audits
