"""DVC operations over the generated ``dvc.yaml``: init, commit, push, pull, status.

All go through DVC's Python API (``dvc.repo.Repo``), imported lazily. ``pull`` also makes
Snakemake accept what it pulled: Snakemake reruns a job whose input is newer than its output
and compares params only with its local ``.snakemake/metadata``; a checkout writes files in
no particular order and a clone has no metadata, so a plain ``dvc pull`` reruns the DAG.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reprolm.codedigest import code_digest
from reprolm.dvc.failures import check_remote, explained
from reprolm.dvc.pipeline import DVC_YAML, read_stages, stage_name
from reprolm.dvc.records import open_repo, status_in_repo
from reprolm.hashing import MANIFEST_NAME, payload_files
from reprolm.manifest import ManifestError, read_manifest
from reprolm.plan import Plan

REMOTE_NAME = "local"
REMOTE_ENV = "REPROLM_DVC_REMOTE"
DEFAULT_REMOTE_URL = "../reprolm-dvc-remote"  # relative to the project root: a sibling dir


def _is_url(url: str) -> bool:
    return "://" in url


def init(
    root: Path, url: str | None = None, *, name: str = REMOTE_NAME, local: bool = False
) -> str:
    """``dvc init`` (if needed) and a default remote ``name`` at ``url``.

    ``url`` defaults to ``$REPROLM_DVC_REMOTE`` or ``../reprolm-dvc-remote``; a relative local
    path is taken relative to ``root`` (DVC stores it relative to ``.dvc/``, so every clone
    that sits beside the remote finds it). ``local`` writes ``.dvc/config.local`` (not
    committed) instead of ``.dvc/config``. Returns the remote's URL as resolved.
    """
    from dvc.config_schema import RelPath
    from dvc.repo import Repo

    root = Path(root).resolve()
    if not (root / ".dvc").is_dir():
        Repo.init(os.fspath(root), no_scm=not (root / ".git").exists()).close()
    url = url or os.environ.get(REMOTE_ENV) or DEFAULT_REMOTE_URL
    resolved: str = url
    if not _is_url(url):
        path = Path(url).expanduser()
        resolved = os.fspath(path if path.is_absolute() else (root / path).resolve())
        # RelPath: DVC saves it relative to the config file; an absolute path stays absolute.
        url = RelPath(resolved) if not Path(url).expanduser().is_absolute() else resolved
    with (
        explained(root),
        open_repo(root) as repo,
        repo.config.edit("local" if local else "repo") as conf,
    ):
        conf["remote"][name] = {"url": url}
        conf["core"]["remote"] = name
    return resolved


def commit(root: Path, plan: Plan | None = None) -> dict[str, list[str]]:
    """Record every finished artifact of ``dvc.yaml`` (or of ``plan``) in the DVC cache.

    Finished = its ``provenance.json`` exists (the runner writes it last, atomically). Returns
    ``{"committed": [stage names], "unfinished": [...], "untracked": [artifact dirs of plan
    jobs that dvc.yaml lacks: run reprolm dvc sync]}``.
    """
    root = Path(root).resolve()
    stages = read_stages(root)
    result: dict[str, list[str]] = {"committed": [], "unfinished": [], "untracked": []}
    wanted = list(stages)
    if plan is not None:
        by_dir = {out: name for name, out in stages.items()}
        wanted = []
        for job in plan.jobs.values():
            if job.artifact_dir in by_dir:
                wanted.append(by_dir[job.artifact_dir])
            elif (root / job.manifest).is_file():
                result["untracked"].append(job.artifact_dir)
    for name in wanted:
        finished = (root / stages[name] / MANIFEST_NAME).is_file()
        result["committed" if finished else "unfinished"].append(name)
    for name in result["committed"]:
        payload_files(root / stages[name])  # refuses symlinks before DVC follows them
    if result["committed"]:
        _commit_stages(root, result["committed"])
    return result


def _commit_stages(root: Path, names: list[str]) -> None:
    """What ``dvc commit --force <stage>`` does, for many stages under one lock and one index.

    ``Repo.commit`` takes one target and rebuilds the index each call (~1 s per stage); this
    saves (hashes deps, params, outs), caches the outs and writes ``dvc.lock`` once. No
    prompt: record-only stages have no DVC run to compare their changed deps with.
    """
    from dvc.repo import lock_repo

    with explained(root), open_repo(root) as repo, lock_repo(repo):
        by_name = {stage.name: stage for stage in repo.index.stages if stage.name}
        stages = [by_name[name] for name in names]
        for stage in stages:
            stage.save()
            stage.commit()
        stages[0].dvcfile.dump_stages(stages, update_pipeline=False)


def push(root: Path, remote: str | None = None) -> int:
    """``dvc push`` of every committed artifact; returns the number of files transferred."""
    with explained(Path(root), remote) as target:
        check_remote(target, writing=True)
        with open_repo(Path(root)) as repo:
            return int(repo.push(remote=remote) or 0)


def restore_mtimes(root: Path) -> list[str]:
    """Give each artifact's manifest a later mtime than its inputs' (``dvc.yaml`` = plan order).

    Snakemake's outputs are the manifests; ascending mtimes in plan order mean no input is
    newer than an output that depends on it. Times end one second ago, never in the future.
    Returns the manifests touched.
    """
    root = Path(root)
    manifests = [
        root / out / MANIFEST_NAME
        for out in read_stages(root).values()
        if (root / out / MANIFEST_NAME).is_file()
    ]
    start = time.time_ns() - (len(manifests) + 1) * 1_000_000_000
    for index, manifest in enumerate(manifests):
        stamp = start + index * 1_000_000_000
        os.utime(manifest, ns=(stamp, stamp))
    return [m.relative_to(root).as_posix() for m in manifests]


def recorded_recipe(root: Path) -> str | None:
    """The recipe ``dvc.yaml`` was generated for (the ``--configfile`` of its ``cmd`` lines)."""
    text = (Path(root) / DVC_YAML).read_text(encoding="utf-8")
    found = re.search(r"--configfile (\S+)", text)
    return found.group(1) if found else None


def stale_code(root: Path) -> list[str]:
    """Artifacts whose manifest's ``code_digest`` is not the checkout's code for the stage.

    Such an artifact was built by other stage code than the checkout's (``dvc.lock`` not
    refreshed after a code change); Snakemake cannot see that in a fresh clone, so we say it.
    """
    root = Path(root)
    stale = []
    for out in read_stages(root).values():
        try:
            manifest = read_manifest(root / out)
        except ManifestError:
            continue
        recorded = manifest.get("code", {}).get("code_digest")
        if recorded and recorded != code_digest(manifest["stage"], root):
            stale.append(out)
    return stale


def record_snakemake_metadata(root: Path, recipe: str) -> None:
    """``snakemake --touch --forceall``: mark every output done *and* record its metadata.

    Without ``.snakemake/metadata`` Snakemake cannot compare params (config, code digest), so a
    later edit of a stage's source in a fresh clone would not rerun it. Touch mode also sets
    mtimes in DAG order. The DVC hook is turned off for this run (nothing new to commit), and
    MLflow tracking too: it builds nothing, so it logs no workflow run (nor creates a store).
    """
    env = {**os.environ, "REPROLM_DVC_COMMIT": "0", "REPROLM_MLFLOW": "off"}
    command = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/local",
               "--cores", "1", "--configfile", recipe, "--touch", "--forceall"]  # fmt: skip
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stderr[-3000:]}")


def pull(
    root: Path, remote: str | None = None, *, recipe: str | None = None, touch: bool = True
) -> dict[str, Any]:
    """``dvc pull`` every recorded artifact, then make Snakemake see the pulled DAG as done.

    Mtimes are restored in plan order (enough for ``snakemake -n`` to say nothing to do); with
    ``touch`` and no stale code, ``snakemake --touch`` also records Snakemake's metadata so
    that later config or code edits rerun what they should. Returns ``{"pulled": DVC's
    stats, "touched": manifests, "stale_code": artifacts built by other code,
    "metadata": whether Snakemake metadata was recorded}``.
    """
    root = Path(root)
    with explained(root, remote) as target:
        check_remote(target, writing=False)
        with open_repo(root) as repo:
            stats = repo.pull(remote=remote)
    touched = restore_mtimes(root)
    stale = stale_code(root)
    recipe = recipe or recorded_recipe(root)
    metadata = bool(touch and recipe and touched and not stale)
    if metadata:
        record_snakemake_metadata(root, recipe)
    return {"pulled": stats, "touched": touched, "stale_code": stale, "metadata": metadata}


def status(root: Path, plan: Plan, remote: str | None = None) -> list[dict[str, Any]]:
    """``artifact_status`` of every job of ``plan``, with its stage and artifact dir."""
    root = Path(root)
    rows = []
    with explained(root, remote), open_repo(root) as repo:
        for job in plan.jobs.values():
            row = {"job": job.key, "dvc_stage": stage_name(job), "artifact": job.artifact_dir}
            row.update(status_in_repo(repo, root / job.artifact_dir, remote=remote))
            rows.append(row)
    return rows


def commit_on_success(plan: Plan, root: Path = Path(".")) -> None:
    """Snakemake ``onsuccess`` hook: commit the run's artifacts when ``root`` is a DVC repo.

    Never fails the workflow (the artifacts are already correct); it says what went wrong.
    """
    if not (Path(root) / ".dvc").is_dir() or os.environ.get("REPROLM_DVC_COMMIT") == "0":
        return
    if not (Path(root) / DVC_YAML).is_file():
        print("reprolm dvc: no dvc.yaml here; run `reprolm dvc sync` to record artifacts in DVC")
        return
    try:
        result = commit(root, plan)
    except Exception as error:  # report, do not fail a successful workflow
        print(f"reprolm dvc: commit failed: {error}; rerun `reprolm dvc commit` by hand")
        return
    print(f"reprolm dvc: committed {len(result['committed'])} artifact(s) to the DVC cache")
    if result["untracked"]:
        print(
            "reprolm dvc: dvc.yaml does not track "
            + ", ".join(result["untracked"])
            + "; run `reprolm dvc sync --recipe <this recipe>` and `reprolm dvc commit`"
        )
