"""DVC as the artifacts' storage and record, with real DVC, git and Snakemake.

* ``dvc.yaml`` is generated deterministically from the plan; ``sync --check`` fails after a
  recipe change and passes after a sync; the repository's committed files are in sync.
* The micro recipe runs under Snakemake in a git + DVC project; the ``onsuccess`` hook commits
  every artifact; ``dvc push`` to the default local remote; a ``git clone`` + ``reprolm dvc
  pull`` elsewhere gives verified payloads and ``snakemake -n`` has nothing to do.
* ``artifact_status`` reports tracked / cache / remote / workspace state, and notices a
  modified payload and a missing cache object.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

from reprolm import dvc
from reprolm.manifest import verify_payload
from reprolm.plan import load_plan
from tests.integration.dvc_project import (
    ROOT,
    environment,
    make_project,
    reprolm,
    run,
    snakemake,
)
from tests.integration.namespaces import needs_namespaces, with_tmpfs

MICRO = "config/micro.yaml"


def test_render_is_deterministic_and_record_only(tmp_path):
    plan = load_plan(ROOT / MICRO)
    first = dvc.render(plan, Path(MICRO), ROOT)
    assert first == dvc.render(load_plan(ROOT / MICRO), Path(MICRO), ROOT)
    stages = yaml.safe_load(first[dvc.DVC_YAML])["stages"]
    params = yaml.safe_load(first[dvc.PARAMS_FILE])
    assert len(stages) == len(plan.jobs)
    for job in plan.jobs.values():
        stage = stages[dvc.stage_name(job)]
        assert stage["outs"] == [{job.artifact_dir: {"cache": True}}]
        assert stage["cmd"].endswith(f"--configfile {MICRO} {job.manifest}")
        for input_dir in plan.input_dirs(job).values():
            assert input_dir in stage["deps"]
        assert f"stages/{job.stage}/stage.py" in stage["deps"]
        assert params[dvc.stage_name(job)] == job.config


def test_committed_dvc_yaml_is_in_sync_with_the_default_recipe():
    """What CI checks: `reprolm dvc sync --check` in the repository."""
    diff = dvc.check(load_plan(ROOT / "config/tiny.yaml"), Path("config/tiny.yaml"), ROOT)
    assert diff == "", f"run `reprolm dvc sync` and commit dvc.yaml:\n{diff}"


def test_sync_check_fails_after_a_recipe_change_and_passes_after_sync(tmp_path):
    project = make_project(tmp_path / "p")
    env = environment(project, tmp_path)
    reprolm(project, env, "dvc", "sync", "--recipe", MICRO)
    assert reprolm(project, env, "dvc", "sync", "--recipe", MICRO, "--check").returncode == 0
    recipe = yaml.safe_load((project / MICRO).read_text())
    recipe.setdefault("sft", {})["learning_rate"] = 0.123
    (project / MICRO).write_text(yaml.safe_dump(recipe))
    done = reprolm(project, env, "dvc", "sync", "--recipe", MICRO, "--check", check=False)
    assert done.returncode == 1
    assert "+    - artifacts/sft/sft-" in done.stdout  # the new sft artifact in the diff
    assert "learning_rate: 0.123" in done.stdout
    assert "out of sync" in done.stderr
    reprolm(project, env, "dvc", "sync", "--recipe", MICRO)
    assert reprolm(project, env, "dvc", "sync", "--recipe", MICRO, "--check").returncode == 0


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """A git + DVC project that ran the micro recipe, committed and pushed it; timings."""
    base = tmp_path_factory.mktemp("dvc")
    project = make_project(base / "origin")
    env = environment(project, base)
    timings: dict[str, float] = {}
    run(project, env, "git", "init", "-q", "-b", "main")
    reprolm(project, env, "dvc", "sync", "--recipe", MICRO)
    reprolm(project, env, "dvc", "init")  # default remote: ../reprolm-dvc-remote
    run(project, env, "git", "add", "-A")
    run(project, env, "git", "commit", "-q", "-m", "project")
    start = time.perf_counter()
    done = snakemake(project, env)  # the onsuccess hook commits every artifact
    timings["snakemake_micro_s"] = time.perf_counter() - start
    assert "reprolm dvc: committed 13 artifact(s)" in done.stdout + done.stderr
    start = time.perf_counter()
    reprolm(project, env, "dvc", "commit")  # all already committed: the re-commit cost
    timings["recommit_s"] = time.perf_counter() - start
    start = time.perf_counter()
    reprolm(project, env, "dvc", "push")
    timings["push_s"] = time.perf_counter() - start
    start = time.perf_counter()
    run(project, env, sys_dvc(), "status")
    timings["dvc_status_s"] = time.perf_counter() - start
    run(project, env, "git", "add", "dvc.lock")
    run(project, env, "git", "commit", "-q", "-m", "artifacts")
    print("dvc timings:", json.dumps(timings))
    return project, base, env


def sys_dvc() -> str:
    import sys

    return str(Path(sys.executable).parent / "dvc")


@pytest.mark.slow
def test_hook_recorded_every_artifact(pushed):
    project, base, _ = pushed
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    plan = load_plan(project / MICRO)
    for job in plan.jobs.values():
        (out,) = lock[dvc.stage_name(job)]["outs"]
        assert out["path"] == job.artifact_dir and out["md5"].endswith(".dir")
        assert lock[dvc.stage_name(job)]["params"][dvc.PARAMS_FILE][dvc.stage_name(job)]
    assert (base / "reprolm-dvc-remote" / "files" / "md5").is_dir()


def test_audit_checks_every_node_against_dvc_with_one_repo_open(pushed):
    from reprolm.audit import OK, audit

    project, _, _ = pushed
    plan = load_plan(project / MICRO)
    report = audit(project / plan.release.artifact_dir, root=project)
    assert len(report.nodes) == 13
    assert {node.checks["dvc"]["status"] for node in report.nodes} == {OK}
    directories = [project / job.artifact_dir for job in plan.jobs.values()]
    batch = dvc.artifact_statuses(directories)
    for directory in directories[:3]:
        assert batch[directory.resolve()] == dvc.artifact_status(directory)


def only_the_report_is_redrawn(done) -> bool:
    """A dry run plans no artifact job: at most the report's pages (reports/ is neither in git
    nor in DVC: a view of the artifacts, redrawn in seconds)."""
    out = done.stdout + done.stderr
    if "Nothing to be done" in out:
        return True
    table = out.split("Job stats:", 1)[1]
    rules = {r for r, _ in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)} - {"total"}
    return rules == {"all", "report"}


@pytest.mark.slow
def test_fresh_clone_and_pull_has_nothing_to_do(pushed):
    project, base, env = pushed
    clone = base / "clone"
    run(base, env, "git", "clone", "-q", str(project), str(clone))
    env = {**env, "PYTHONPATH": str(clone)}
    assert not (clone / "artifacts").exists()
    reprolm(clone, env, "dvc", "pull")
    plan = load_plan(clone / MICRO)
    for job in plan.jobs.values():
        assert verify_payload(clone / job.artifact_dir) == [], job.key
    done = snakemake(clone, env, "--dry-run")
    assert only_the_report_is_redrawn(done), done.stdout + done.stderr
    # Snakemake's metadata was recorded, so a stage edit in the clone still reruns the stage.
    assert (clone / ".snakemake" / "metadata").is_dir()
    source = clone / "stages" / "release" / "__init__.py"
    source.write_text(source.read_text() + "\n# an edit after the clone\n")
    done = snakemake(clone, env, "--dry-run")
    assert re.search(r"^release\s+1$", done.stdout, flags=re.M), done.stdout
    assert not re.search(r"^world\s+1$", done.stdout, flags=re.M), done.stdout
    status = dvc.artifact_status(clone / plan.release.artifact_dir)
    assert status["tracked"] and status["in_cache"] and status["in_remote"] is True
    assert status["workspace"] == "clean"


@pytest.mark.slow
def test_fresh_clone_and_plain_dvc_pull_has_nothing_to_do(pushed):
    """DVC's own habit: `git clone` + `dvc pull`. The checkout and the pull leave modification
    times in no particular order and Snakemake has no records; the Snakefile checks content
    (reprolm.freshness) and aligns the times of current artifacts, so nothing reruns. An edit of
    a stage's code in the clone is named (the manifest records other code) with the command to
    rerun it."""
    project, base, env = pushed
    clone = base / "plain-clone"
    run(base, env, "git", "clone", "-q", str(project), str(clone))
    env = {**env, "PYTHONPATH": str(clone)}
    run(clone, env, sys_dvc(), "pull", "-q")
    assert not (clone / ".snakemake").exists(), "no Snakemake records: content alone decides"
    plan = load_plan(clone / MICRO)
    # Against mtime order: every upstream manifest newer than what was built from it.
    for step, job in enumerate(reversed(list(plan.jobs.values()))):
        stamp = time.time() + step
        os.utime(clone / job.manifest, (stamp, stamp))
    done = snakemake(clone, env, "--dry-run")
    assert only_the_report_is_redrawn(done), done.stdout + done.stderr
    with_inputs = sum(1 for job in plan.jobs.values() if job.inputs)  # all but world, evaldata
    assert f"{with_inputs} current artifact(s) were older than their inputs" in done.stderr
    assert {verify_payload(clone / job.artifact_dir) == [] for job in plan.jobs.values()} == {True}
    source = clone / "stages" / "release" / "__init__.py"
    source.write_text(source.read_text() + "\n# an edit after the clone\n")
    done = snakemake(clone, env, "--dry-run")
    release = plan.release.manifest
    assert f"reprolm: stale {release}: built by other release job code" in done.stderr
    assert f"--forcerun {release}" in done.stderr, "says how to rerun it"
    done = snakemake(clone, env, "--dry-run", "--forcerun", release)
    assert re.search(r"^release\s+1$", done.stdout, flags=re.M), done.stdout
    assert not re.search(r"^world\s+1$", done.stdout, flags=re.M), done.stdout


@pytest.mark.slow
def test_dvc_commit_refuses_a_symlinked_directory_in_a_payload(pushed, tmp_path):
    project, _, env = pushed
    world = project / load_plan(project / MICRO).get("world", "world").artifact_dir
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("not the artifact's\n")
    link = world / "linked"
    link.symlink_to(outside, target_is_directory=True)
    try:
        done = reprolm(project, env, "dvc", "commit", check=False)
        assert done.returncode != 0
        assert "linked: a symlinked directory" in done.stderr, done.stderr
    finally:
        link.unlink()
    assert dvc.artifact_status(world)["workspace"] == "clean"


@pytest.mark.slow
def test_artifact_status_sees_a_modified_payload_and_a_lost_cache(pushed, tmp_path):
    project = pushed[0]
    plan = load_plan(project / MICRO)
    world = project / plan.get("world", "world").artifact_dir
    status = dvc.artifact_status(world)
    assert status == {
        "tracked": True,
        "stage": "world",
        "md5": status["md5"],
        "nfiles": status["nfiles"],
        "workspace": "clean",
        "in_cache": True,
        "in_remote": True,
        "remote": "local",
    }
    assert status["md5"].endswith(".dir") and status["nfiles"] >= 5
    assert dvc.artifact_status(tmp_path) ["tracked"] is False  # fmt: skip
    # A changed payload file: the workspace no longer matches the record.
    victim = world / "planted.json"
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved + b" ")
        assert dvc.artifact_status(world)["workspace"] == "modified"
    finally:
        victim.write_bytes(saved)
    # A cache object lost: in_cache turns false (the remote still has it).
    dir_object = project / ".dvc/cache/files/md5" / status["md5"][:2] / status["md5"][2:]
    moved = tmp_path / "dir-object"
    shutil.move(dir_object, moved)
    try:
        lost = dvc.artifact_status(world)
        assert lost["in_cache"] is False and lost["in_remote"] is True
    finally:
        shutil.move(moved, dir_object)


@pytest.mark.slow
def test_fresh_clone_audits_clean_and_an_unreachable_remote_is_not_checkable(pushed):
    """``git clone`` + ``reprolm dvc pull`` + ``reprolm audit``: no MLflow store in the clone is
    not checkable, not broken (exit 0); without cache and with the remote gone, DVC is not
    checkable either, and ``--require dvc`` / ``--require mlflow`` exit 1 saying why."""
    project, base, env = pushed
    clone = base / "clone-audit"  # beside the remote, as the relative remote URL expects
    run(base, env, "git", "clone", "-q", str(project), str(clone))
    env = {**env, "PYTHONPATH": str(clone)}
    reprolm(clone, env, "dvc", "pull")
    release = load_plan(clone / MICRO).release.artifact_dir

    def audit_clone(*args: str) -> tuple[int, dict, str]:
        done = reprolm(clone, env, "audit", "--json", release, *args, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, json.loads(done.stdout), done.stderr

    code, report, _ = audit_clone()
    assert code == 0 and report["problems"] == [], report["problems"]
    assert {n["checks"]["dvc"]["status"] for n in report["nodes"]} == {"ok"}
    assert {n["checks"]["mlflow"]["status"] for n in report["nodes"]} == {"not checked"}
    code, _, stderr = audit_clone("--require", "mlflow")
    assert code == 1 and "--require mlflow: 13 of 13" in stderr and "no tracking store" in stderr
    assert not (clone / "mlruns.db").exists()  # the pull's `snakemake --touch` tracked nothing
    # A store made in the clone after the artifacts (the clone ran a workflow): their runs were
    # tracked elsewhere, not lost.
    from mlflow.tracking import MlflowClient

    MlflowClient(f"sqlite:///{clone / 'mlruns.db'}").create_experiment("reprolm")
    code, report, _ = audit_clone()
    assert code == 0 and report["problems"] == [], report["problems"]
    rows = [row for row in report["not_checkable"] if ": mlflow: " in row]
    assert len(rows) == 13 and all("after the job ended" in row for row in rows), rows
    assert audit_clone("--require", "dvc")[0] == 0  # cache and remote hold every artifact
    # The cache gone and the remote's path too (another machine's, an unmounted disk).
    shutil.rmtree(clone / ".dvc" / "cache")
    run(clone, env, sys_dvc(), "remote", "modify", "--local", "local", "url", str(base / "gone"))
    code, report, _ = audit_clone()
    assert code == 0 and report["problems"] == [], report["problems"]
    assert {n["checks"]["dvc"]["status"] for n in report["nodes"]} == {"not checked"}
    dvc_rows = [row for row in report["not_checkable"] if ": dvc: " in row]
    assert len(dvc_rows) == 13 and all("remote local is unreachable" in r for r in dvc_rows)
    code, report, stderr = audit_clone("--require", "dvc")
    assert code == 1 and report["problems"] == []
    assert "--require dvc: 13 of 13 dvc checks" in stderr and "reprolm dvc pull" in stderr
    # A payload that differs from DVC's record stays broken, remote or not.
    victim = clone / load_plan(clone / MICRO).get("world", "world").artifact_dir / "planted.json"
    victim.write_bytes(victim.read_bytes() + b" ")
    code, report, _ = audit_clone()
    assert code == 1
    assert any(": dvc: DVC record " in p and "workspace modified" in p for p in report["problems"])


# --- Remote failures: real DVC, real remote directories, real file systems --------------------
# As root (CI), chmod does not stop a write: tests.integration.namespaces says how these tests
# get real "permission denied", "read-only file system" and "disk full" errors anyway.


@pytest.fixture(scope="module")
def world_project(tmp_path_factory):
    """A git + DVC project whose real world job ran and was committed to the DVC cache."""
    base = tmp_path_factory.mktemp("dvc-faults")
    project = make_project(base / "project")
    env = {**environment(project, base), "REPROLM_MLFLOW": "off"}
    run(project, env, "git", "init", "-q", "-b", "main")
    reprolm(project, env, "dvc", "sync", "--recipe", MICRO)
    reprolm(project, env, "dvc", "init")
    manifest = load_plan(project / MICRO).get("world", "world").manifest
    snakemake_world = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/local",
                       "--cores", "1", manifest, "--configfile", MICRO]  # fmt: skip
    done = run(project, env, *snakemake_world)
    assert "reprolm dvc: committed 1 artifact(s)" in done.stdout + done.stderr
    return project, base, env


def _fails_clearly(project, env, url: str, command: str, *prefix: str) -> str:
    """Point the remote at ``url``, run ``reprolm dvc <command>`` (under ``prefix``): exit 2,
    one paragraph naming the remote and its URL, no traceback; returns that paragraph."""
    reprolm(project, env, "dvc", "init", "--local", "--url", url)
    done = run(project, env, *prefix, sys.executable, "-m", "reprolm.cli", "dvc", command,
               check=False)  # fmt: skip
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    (paragraph,) = [line for line in done.stderr.splitlines() if line.startswith("reprolm dvc")]
    assert paragraph.startswith(f"reprolm dvc {command}: remote local (")
    assert "ERROR" not in done.stderr, "DVC's per-file errors are folded into the paragraph"
    return paragraph


@pytest.mark.slow
@needs_namespaces
def test_push_to_a_read_only_remote_names_remote_cause_and_fix(world_project):
    project, base, env = world_project
    parent = base / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    # As root, chmod alone does not stop the write: drop the privilege in a user namespace.
    prefix = ("unshare", "-U") if os.geteuid() == 0 else ()
    message = _fails_clearly(project, env, str(parent / "remote"), "push", *prefix)
    remote = parent / "remote"
    assert f"remote local ({remote}): permission denied at {remote}" in message
    assert f"Make {parent} writable" in message and "dvc remote modify --local local url" in message


@pytest.mark.slow
@needs_namespaces
def test_push_to_a_read_only_file_system_and_a_full_disk(world_project):
    project, base, env = world_project
    read_only = base / "ro-fs"
    read_only.mkdir()
    in_namespace = with_tmpfs(read_only, "ro")
    message = _fails_clearly(project, env, str(read_only / "remote"), "push", *in_namespace)
    assert f"read-only file system at {read_only / 'remote'}" in message
    assert f"The file system holding {read_only} is mounted read-only" in message
    small = base / "small-fs"
    small.mkdir()  # 64 KiB: the world artifact's cache holds ~200 KiB
    in_namespace = with_tmpfs(small, "size=64k")
    message = _fails_clearly(project, env, str(small), "push", *in_namespace)
    assert re.search(r"disk full \([\d.]+ (B|KiB) free\) at " + re.escape(str(small)), message)
    assert f"Free space on the disk holding {small}" in message


@pytest.mark.slow
def test_remote_under_a_missing_path_or_a_file_is_named(world_project):
    project, base, env = world_project
    gone = base / "unmounted" / "disk" / "remote"
    message = _fails_clearly(project, env, str(gone), "push")
    assert f"{base / 'unmounted'} does not exist (missing directory)" in message
    assert f"mkdir -p {gone.parent}" in message and "dvc remote modify" in message
    message = _fails_clearly(project, env, str(gone), "pull")
    assert f"{base / 'unmounted'} does not exist" in message and "cannot be read" in message
    assert not gone.exists(), "nothing created where a disk may be missing"
    regular = base / "a-file"
    regular.write_text("not a directory\n")
    message = _fails_clearly(project, env, str(regular / "remote"), "push")
    assert f"{regular} is a regular file where a directory should be" in message
    assert f"Move {regular} away" in message


@pytest.mark.slow
def test_pull_from_an_empty_remote_and_a_credentialed_url(world_project):
    project, base, env = world_project
    empty = base / "empty-remote"
    empty.mkdir()
    # A clone's state: neither the cache nor the artifact here (moved aside, then back).
    aside = [(project / ".dvc" / "cache", base / "cache-aside"),
             (project / "artifacts", base / "artifacts-aside")]  # fmt: skip
    for place, away in aside:
        shutil.move(place, away)
    try:
        message = _fails_clearly(project, env, str(empty), "pull")
    finally:
        for place, away in aside:
            shutil.rmtree(place, ignore_errors=True)
            shutil.move(away, place)
    assert "artifact(s) are neither in the DVC cache nor on the remote" in message
    assert "reprolm dvc push" in message
    secret = "hunter2-not-for-logs"
    url = f"s3://AKIAEXAMPLE:{secret}@bucket/reprolm"
    done = reprolm(project, env, "dvc", "init", "--local", "--url", url)
    assert secret not in done.stdout + done.stderr and "s3://***@bucket/reprolm" in done.stdout
    message = _fails_clearly(project, env, url, "push")
    assert secret not in message and "remote local (s3://***@bucket/reprolm)" in message
    assert "dvc-s3" in message
    # A reachable remote again: the same push succeeds (nothing above broke the project).
    reprolm(project, env, "dvc", "init", "--local", "--url", str(base / "reprolm-dvc-remote"))
    assert re.match(r"\d+ file\(s\) pushed", reprolm(project, env, "dvc", "push").stdout)
