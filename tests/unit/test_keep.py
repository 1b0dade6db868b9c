"""Nothing already produced is lost: a failed re-run or a kill inside the install keeps the
previous artifact whole (reprolm.keep, reprolm.runner._install)."""

from __future__ import annotations

import pytest

from reprolm import keep, runner
from reprolm.fingerprint import fingerprint
from reprolm.hashing import MANIFEST_NAME
from reprolm.lineage import dependents, scan
from reprolm.manifest import read_manifest, verify_payload
from reprolm.recipe import load_recipe, stage_config
from reprolm.runner import execute

LEVEL = {"level": "bitwise"}


@pytest.fixture
def job(tmp_path, monkeypatch):
    """A finished world artifact: (config, output directory, manifest)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPROLM_MLFLOW", "off")
    config = stage_config(load_recipe({"name": "t", "threads": 1}), "world")
    out = tmp_path / "artifacts" / "world" / f"x-{fingerprint('world', config, {})}"
    manifest = execute("world", write, config, {}, out, reproducibility=LEVEL)
    return config, out, manifest


def write(config, inputs, output_dir, context):
    (output_dir / "numbers.txt").write_text(f"{config['seed']}\n")
    return {"count": 1}


def fail(config, inputs, output_dir, context):
    raise RuntimeError("an edited stage that fails")


def test_install_keeps_a_hard_link_of_the_manifest(job):
    _, out, _ = job
    link = keep.manifest_link(out)
    assert link.stat().st_ino == (out / MANIFEST_NAME).stat().st_ino


def test_failed_rerun_after_snakemake_deleted_the_manifest_keeps_the_artifact(job):
    config, out, manifest = job
    (out / MANIFEST_NAME).unlink()  # Snakemake, before starting the job
    with pytest.raises(RuntimeError):
        execute("world", fail, config, {}, out, reproducibility=LEVEL)
    assert read_manifest(out)["digest"] == manifest["digest"]
    (out / MANIFEST_NAME).unlink()  # Snakemake, after the job failed; then onerror
    assert keep.restore_all([out]) == [out]
    assert verify_payload(out) == []
    assert read_manifest(out)["digest"] == manifest["digest"]


def test_damaged_payload_is_not_given_its_manifest_back(job):
    _, out, _ = job
    (out / MANIFEST_NAME).unlink()
    (out / "numbers.txt").write_text("damaged\n")
    assert keep.restore_all([out]) == []
    assert not (out / MANIFEST_NAME).exists()


def test_kill_between_the_install_renames_is_cleaned_by_the_next_run(job, monkeypatch):
    config, out, manifest = job
    dead_pid = 2**22 + 1  # above any pid_max: a process that is gone
    monkeypatch.setattr(runner.os, "getpid", lambda: dead_pid)
    rename = type(out).rename

    def crash_after_first(self, target):
        result = rename(self, target)
        if ".old-" in str(target):
            raise KeyboardInterrupt("killed between the renames")
        return result

    monkeypatch.setattr(type(out), "rename", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        execute("world", write, config, {}, out, reproducibility=LEVEL)
    monkeypatch.undo()
    monkeypatch.setenv("REPROLM_MLFLOW", "off")
    root = out.parent.parent.parent
    leftover = out.with_name(f".{out.name}.old-{dead_pid}")
    assert leftover.is_dir()
    assert all(not path.name.startswith(".") for path, _ in scan(root))
    execute("world", write, config, {}, out, reproducibility=LEVEL)
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        [out.name, keep.manifest_link(out).name]
    )
    assert read_manifest(out)["digest"] == manifest["digest"]
    assert dependents(out, root)["path"] == f"artifacts/world/{out.name}"


def test_lineage_never_lists_install_leftovers(job):
    _, out, _ = job
    leftover = out.with_name(f".{out.name}.old-{2**22 + 1}")
    leftover.mkdir()
    (leftover / MANIFEST_NAME).write_text((out / MANIFEST_NAME).read_text())
    root = out.parent.parent.parent
    assert [path for path, _ in scan(root)] == [out]


def test_kill_with_nothing_installed_moves_the_old_artifact_back(job):
    _, out, manifest = job
    leftover = out.with_name(f".{out.name}.old-{2**22 + 1}")
    out.rename(leftover)
    keep.clean_leftovers(out)
    assert not leftover.exists()
    assert verify_payload(out) == [] and read_manifest(out)["digest"] == manifest["digest"]
