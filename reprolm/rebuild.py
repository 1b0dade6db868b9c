"""Rebuild an artifact: re-run exactly the job that made it and compare what comes out.

The recorded config, the recorded inputs (verified by digest), and the recorded code: the
current checkout when its stage sources have the recorded code digest, else a git worktree at
the recorded commit (plus the saved diff when the tree was dirty). The job runs into a scratch
directory; the result is compared with the original per the stage's reproducibility level.
As one local process by default; with ``as_recorded`` through the recorded launcher, device and
image (``reprolm.placement``), or refused when this machine cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolm import saveddiff
from reprolm.canonical import canonical_json
from reprolm.codedigest import CODE_ROOT, CODE_SCOPE, changed_sources, code_digest
from reprolm.hashing import MANIFEST_NAME, PayloadError, hash_payload, payload_digest
from reprolm.lineage import outside_artifacts
from reprolm.manifest import (
    REQUIRED_FIELDS,
    ManifestError,
    compare_payload,
    read_manifest,
    verify_payload,
)
from reprolm.placement import (
    Placement,
    PlacementError,
    describe,
    differences,
    job_command,
    placement_of,
    refusals,
)
from reprolm.runner import DIFF_DIR


class RebuildError(RuntimeError):
    """The job cannot be re-run as recorded (the message says what is missing and what to do)."""


@dataclass
class RebuildResult:
    artifact: str
    stage: str
    level: str
    original_digest: str
    rebuilt_digest: str
    source: str  # which code ran: this checkout, or the recorded commit (+ diff) and why
    code_source: str = "checkout"  # "checkout" | "recorded-commit"
    differing_files: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)  # original files not as recorded on disk
    tamper_report: list[str] = field(default_factory=list)  # verify's lines for them
    tolerance_report: dict[str, Any] = field(default_factory=dict)
    placement: dict[str, Any] = field(default_factory=dict)  # how it ran, vs the recorded
    ok: bool = False

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


# What a re-run reads beyond what every manifest has.
REBUILD_FIELDS = (*REQUIRED_FIELDS, "config", "inputs", "code", "execution", "reproducibility")


def _input_dirs(manifest: dict[str, Any], workdir: Path, where: Path) -> dict[str, Path]:
    """The recorded inputs, inside ``<workdir>/artifacts/``, present, with the recorded digests."""
    dirs: dict[str, Path] = {}
    for name, record in sorted(manifest["inputs"].items()):
        if not record.get("path") or not record.get("digest"):
            raise RebuildError(
                f"{where}: inputs.{name} records no path or digest: the job's input cannot be "
                "found and checked (was this manifest written by reprolm?)"
            )
        if refused := outside_artifacts(record["path"], workdir):
            raise RebuildError(f"{where}: inputs.{name}.{refused}")
        path = workdir / record["path"]
        try:
            digest = read_manifest(path)["digest"]
        except ManifestError:
            raise RebuildError(
                f"input {name!r} ({record['path']}) is not here; fetch it first "
                f"(`reprolm dvc pull` or `dvc pull {record['path']}`), or rebuild it"
            ) from None
        if digest != record["digest"]:
            raise RebuildError(
                f"input {name!r} ({record['path']}) has digest {digest[:16]}, but the job used "
                f"{record['digest'][:16]}: the input changed since; rebuild it first"
            )
        dirs[name] = path.resolve()
    return dirs


def _source_tree(manifest: dict[str, Any], workdir: Path, scratch: Path) -> tuple[Path, str]:
    """A source tree whose job code has the recorded code digest, and how it was obtained.

    The checkout is used only when its job code (the stage and every job-code module it imports,
    ``reprolm.codedigest``) has the recorded digest, computed under the recorded scope; else the
    recorded commit is checked out into a worktree (plus the saved diff of a dirty tree).
    """
    stage, code = manifest["stage"], manifest["code"]
    same_scope = code.get("code_scope") == CODE_SCOPE
    if same_scope and code_digest(stage, CODE_ROOT) == code["code_digest"]:
        return CODE_ROOT, "this checkout (its job code has the recorded code digest)"
    if same_scope and isinstance(code.get("source_hashes"), dict):
        changed = changed_sources(code["source_hashes"], stage, CODE_ROOT)
        why = "this checkout's job code differs from the recorded: " + ", ".join(changed[:8])
    else:
        why = "the manifest's code digest predates the job-code scope"
    commit = code.get("commit")
    if not commit:
        raise RebuildError(f"{why}; and the manifest records no git commit to recover it from")
    tree = scratch / "src"
    added = _git(CODE_ROOT, "worktree", "add", "--detach", str(tree), commit)
    if added.returncode != 0:
        raise RebuildError(f"cannot check out recorded commit {commit}: {added.stderr.strip()}")
    taken_out: list[str] = []  # what the saved diff's notes say was withheld or scrubbed
    if code.get("dirty"):
        patch = workdir / DIFF_DIR / f"{code.get('diff_hash')}.patch"
        if not code.get("diff_hash") or not patch.is_file():
            raise RebuildError(
                f"the recorded tree (commit {commit[:12]}) was dirty and its diff "
                f"{code.get('diff_hash')} is unavailable (looked for {patch}); the uncommitted "
                "code cannot be recovered, so this job cannot be re-run as recorded"
            )
        text = patch.read_text(encoding="utf-8", errors="replace")
        taken_out = saveddiff.notes(text)[1:]
        if saveddiff.has_changes(text):
            applied = _git(tree, "apply", "--whitespace=nowarn", str(patch.resolve()))
            if applied.returncode != 0:
                raise RebuildError(
                    f"the saved diff {patch} does not apply: {applied.stderr.strip()}"
                )
    recorded = f"recorded commit {commit[:12]}{' + saved diff' if code.get('dirty') else ''}"
    if same_scope and code_digest(stage, tree) != code["code_digest"]:
        why_not = (
            "; credentials were taken out of the saved diff before it was written ("
            + "; ".join(taken_out)
            + "), so the job code cannot be re-created as it ran"
            if taken_out
            else ""
        )
        raise RebuildError(
            f"{recorded} does not reproduce the recorded {stage} code digest{why_not}"
        )
    return tree, f"{recorded} in a git worktree ({why})"


def _run_job(
    manifest: dict[str, Any], tree: Path, inputs: dict[str, Path], out: Path, workdir: Path,
    placement: Placement | None,
) -> None:  # fmt: skip
    """Run the job into ``out``: one local process (``placement`` None) or as recorded."""
    job_args = [
        "--config-json", canonical_json(manifest["config"]),
        *[arg for name, path in inputs.items() for arg in ("--input", f"{name}={path}")],
        "--output", str(out),
    ]  # fmt: skip
    # Bound into a container at their own paths: inputs, source tree, scratch.
    mounts = [workdir.resolve(), tree.resolve(), out.parent.parent.resolve()]
    try:
        command, extra = job_command(placement, manifest["stage"], job_args, mounts)
    except PlacementError as error:
        raise RebuildError(f"cannot rebuild as recorded: {error}") from None
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", **extra}
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RebuildError(f"the re-run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def _differing(original: dict[str, Any], rebuilt: dict[str, Any]) -> list[str]:
    return sorted({rel for _, rel in compare_payload(original, rebuilt)})


def _tampered(artifact: Path, manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Re-hash the original on disk: ``(files not as recorded, verify's report lines)``."""
    try:
        actual = hash_payload(artifact)
    except PayloadError as error:
        raise RebuildError(f"the original artifact is refused: {error}") from None
    report = verify_payload(artifact, manifest, actual)
    files = _differing(manifest["files"], actual)
    return (files or ([MANIFEST_NAME] if report else [])), report


def _rebuilt_files(out: Path) -> dict[str, Any]:
    """The rebuilt payload as it is on disk (not as its manifest records it)."""
    try:
        return hash_payload(out)
    except PayloadError as error:
        raise RebuildError(f"the re-run wrote a payload that is refused: {error}") from None


def _remove_worktree(tree: Path) -> None:
    """Unregister the scratch worktree (if one was added) and prune stale registrations."""
    if tree.exists():
        _git(CODE_ROOT, "worktree", "remove", "--force", str(tree))
    _git(CODE_ROOT, "worktree", "prune")


def _within_tolerance(
    original_dir: Path, rebuilt_dir: Path, files: list[str], bounds: dict[str, float]
) -> tuple[bool, dict[str, Any]]:
    """Compare differing safetensors tensors within ``atol``/``rtol``; other files must match."""
    import torch
    from safetensors.torch import load_file

    report: dict[str, Any] = {}
    ok = True
    for name in files:
        if not name.endswith(".safetensors"):
            report[name] = "differs (not a tensor file: must match exactly)"
            ok = False
            continue
        a, b = load_file(original_dir / name), load_file(rebuilt_dir / name)
        worst = max((float((a[k] - b[k]).abs().max()) for k in a if k in b), default=0.0)
        close = set(a) == set(b) and all(
            torch.allclose(a[k], b[k], atol=bounds.get("atol", 0), rtol=bounds.get("rtol", 0))
            for k in a
        )
        report[name] = {"max_abs_diff": worst, "within": close}
        ok = ok and close
    return ok, report


def _placement_report(
    manifest: dict[str, Any], rebuilt: dict[str, Any], as_recorded: bool
) -> dict[str, Any]:
    """The result's ``placement``: how the job ran, the recorded placement, what differs
    (the fields of ``reprolm.placement.Placement``, and the generated DeepSpeed JSON)."""
    recorded, ran = placement_of(manifest), placement_of(rebuilt)
    differing = differences(recorded, ran)
    generated = (rebuilt["execution"].get("deepspeed_config"),
                 manifest["execution"].get("deepspeed_config"))  # fmt: skip
    if generated[0] != generated[1]:
        differing.append("deepspeed_config")
    note = f"recorded {describe(recorded)}; rebuilt as {describe(ran)}" if differing else ""
    return {
        "as_recorded": as_recorded, "processes": ran.processes, "same": not differing,
        "differences": differing, "note": note, "summary": describe(ran),
        "recorded": recorded.to_json(), "rebuilt": ran.to_json(),
    }  # fmt: skip


def rebuild(
    artifact: Path, *, scratch: Path | None = None, keep: bool = False, as_recorded: bool = False
) -> RebuildResult:
    """Re-run the job that made ``artifact`` (run from the working directory it was made in).

    The original is first re-hashed on disk against its manifest (``tampered``); the rebuilt
    payload is compared as hashed on disk. A tampered original is never ``ok``. With
    ``as_recorded`` the job runs with its recorded placement, or is refused (``RebuildError``
    naming the manifest field) when this machine cannot give it.
    """
    workdir = Path.cwd()
    manifest = read_manifest(artifact, REBUILD_FIELDS)
    where = Path(artifact) / MANIFEST_NAME
    if not isinstance(manifest["code"].get("code_digest"), str):
        raise RebuildError(f"{where}: code.code_digest is missing: the recorded code is unknown")
    tampered, tamper_report = _tampered(Path(artifact), manifest)
    inputs = _input_dirs(manifest, workdir, where)
    recorded = placement_of(manifest)
    if as_recorded and (reasons := refusals(recorded)):
        raise RebuildError(
            "cannot rebuild as recorded (" + describe(recorded) + "): " + "; ".join(reasons)
        )
    scratch = Path(tempfile.mkdtemp(prefix="reprolm-rebuild-", dir=scratch))
    try:
        tree, source = _source_tree(manifest, workdir, scratch)
        out = scratch / "out" / Path(artifact).name
        _run_job(manifest, tree, inputs, out, workdir, recorded if as_recorded else None)
        rebuilt = read_manifest(out)
        same_scope = manifest["code"].get("code_scope") == rebuilt["code"].get("code_scope")
        if same_scope and rebuilt["code"]["code_digest"] != manifest["code"]["code_digest"]:
            raise RebuildError(f"the re-run did not use the recorded {manifest['stage']} code")
        level = manifest["reproducibility"].get("level", "bitwise")
        files = _rebuilt_files(out)
        differing = _differing(manifest["files"], files)
        result = RebuildResult(
            artifact=str(artifact), stage=manifest["stage"], level=level,
            original_digest=manifest["digest"], rebuilt_digest=payload_digest(files),
            source=source, differing_files=differing, tampered=tampered,
            tamper_report=tamper_report,
            code_source="checkout" if tree == CODE_ROOT else "recorded-commit",
            placement=_placement_report(manifest, rebuilt, as_recorded),
        )  # fmt: skip
        if tampered:
            result.ok = False  # the original is not what its manifest says: nothing to compare
        elif level == "tolerance":
            bounds = manifest["reproducibility"]
            result.ok, result.tolerance_report = _within_tolerance(
                Path(artifact), out, differing, bounds
            )
        elif level == "statistical":
            result.ok = True  # a single re-run cannot refute a statistical claim; report only
        else:
            result.ok = not differing and result.rebuilt_digest == manifest["digest"]
        return result
    finally:
        _remove_worktree(scratch / "src")
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
