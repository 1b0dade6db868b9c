"""Verification reads the bytes on disk: a tampered artifact never passes ``verify``, ``audit`` or
``rebuild --verify``, and a payload that is not plain files inside the artifact is refused.

Each test mutates a copy of the micro workspace (one artifact), as a user or a faulty tool would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reprolm.plan import load_plan
from tests.support import MICRO, clone_workspace, reprolm

pytestmark = pytest.mark.slow


@pytest.fixture
def workspace(micro_workspace, tmp_path) -> Path:
    return clone_workspace(micro_workspace, tmp_path / "w")


def curate_dir(workspace: Path) -> Path:
    return workspace / load_plan(workspace / MICRO).get("curate", "curate").artifact_dir


def release_dir(workspace: Path) -> Path:
    return workspace / load_plan(workspace / MICRO).release.artifact_dir


def run_json(workspace: Path, *args: str) -> tuple[int, dict, str]:
    done = reprolm(workspace, *args, "--json")
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def test_rebuild_verify_of_a_tampered_artifact_says_tampered(workspace):
    artifact = curate_dir(workspace)
    target = artifact / "curation.json"
    data = target.read_bytes()
    target.write_bytes(data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])  # one bit, same size
    code, verified, _ = run_json(workspace, "verify", str(artifact))
    assert code == 1 and "changed: curation.json" in verified["problems"]
    code, result, _ = run_json(workspace, "rebuild", "--verify", str(artifact))
    assert code == 1, result
    assert result["ok"] is False
    assert result["tampered"] == ["curation.json"]
    assert result["rebuilt_digest"] == result["original_digest"], "the record itself rebuilds"
    text = reprolm(workspace, "rebuild", "--verify", str(artifact))
    assert text.returncode == 1 and "TAMPERED" in text.stdout and "curation.json" in text.stdout
    assert "bit-identical" not in text.stdout


def test_a_payload_file_replaced_by_a_symlink_is_refused_everywhere(workspace, tmp_path):
    artifact = curate_dir(workspace)
    target = artifact / "curation.json"
    elsewhere = tmp_path / "elsewhere.json"
    shutil.copyfile(target, elsewhere)  # the very same bytes, but not carried by the artifact
    target.unlink()
    target.symlink_to(elsewhere)
    for command in ("verify", "rebuild"):
        done = reprolm(workspace, command, str(artifact))
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        said = done.stderr + done.stdout
        assert "curation.json" in said and "symlink" in said
    code, report, _ = run_json(workspace, "audit", str(release_dir(workspace)))
    assert code == 1
    assert any("symlink" in line for line in report["problems"]), report["problems"]


def test_a_symlinked_directory_inside_a_payload_is_refused_everywhere(workspace, tmp_path):
    artifact = curate_dir(workspace)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "extra.jsonl").write_text('{"text": "smuggled"}\n')
    (artifact / "data" / "more").symlink_to(outside, target_is_directory=True)
    for command in ("verify", "rebuild"):
        done = reprolm(workspace, command, str(artifact))
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "data/more" in done.stderr + done.stdout
        assert "symlinked directory" in done.stderr + done.stdout
    code, report, _ = run_json(workspace, "audit", str(release_dir(workspace)))
    assert code == 1
    assert any("symlinked directory" in line for line in report["problems"]), report
    assert (outside / "extra.jsonl").is_file(), "nothing outside the artifact is touched"


def test_a_size_change_is_named(workspace):
    artifact = curate_dir(workspace)
    with open(artifact / "curation.json", "a", encoding="utf-8") as handle:
        handle.write("\n")
    code, verified, _ = run_json(workspace, "verify", str(artifact))
    assert code == 1
    assert any(p.startswith("size changed: curation.json") for p in verified["problems"])


def test_rebuild_leaves_no_worktree_even_when_refused(workspace):
    """A rebuild refused after it checked out the recorded commit (whose saved diff is gone)
    leaves no registered git worktree and no scratch directory behind."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(workspace), *args], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "workspace")
    artifact = curate_dir(workspace)
    manifest_path = artifact / "provenance.json"
    manifest = json.loads(manifest_path.read_text())
    # Edited record: code unlike the checkout's, from this commit plus a diff that is not here,
    # so the rebuild adds a worktree and then must refuse.
    manifest["code"].update(
        code_digest="0" * 64, commit=git("rev-parse", "HEAD").strip(), dirty=True,
        diff_hash="not-here",
    )  # fmt: skip
    manifest_path.write_text(json.dumps(manifest, indent=2))
    scratch = workspace.parent / "scratch"
    scratch.mkdir()
    done = reprolm(workspace, "rebuild", "--scratch", str(scratch), str(artifact))
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(git("worktree", "list").strip().splitlines()) == 1
    assert list(scratch.iterdir()) == []
