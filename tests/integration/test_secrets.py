"""Secrets planted everywhere a user keeps them reach no output the platform writes.

One git + DVC project (``tests.integration.dvc_project``) runs the micro recipe up to the release
(evaluating the pretrain checkpoint only: the fewest jobs that still run every writer) on a dirty
tree, with secrets in

* the environment: ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``MLFLOW_TRACKING_PASSWORD``, an API
  key, a ``DATABASE_URL`` with a password (a name no secret pattern matches), ``NETRC`` naming a
  netrc file outside the tree;
* files of the tree, changed since the commit: ``.dvc/config`` (a remote URL with user:password),
  ``.dvc/config.local`` (a remote password), a ``.netrc``;
* the recipe: comments with a token, a URL password and the environment's ``HF_TOKEN`` value.

The tracking URI is a server that is down, with a password in it: every event is spooled, the
spool is kept, then ``reprolm mlflow sync`` replays it into a SQLite store. The spool, the store,
DVC (cache, remote, site cache) and every file of the tree but the planted ones and ``.git`` are
read as bytes, with what the commands printed, and no planted value may appear. The saved diff
must still name every changed file and keep the recipe's change.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from reprolm.plan import load_plan
from tests.integration.dvc_project import environment, make_project, reprolm, run
from tests.integration.mlflow_server import free_port
from tests.integration.test_dvc import sys_dvc
from tests.support import MICRO, SNAKEMAKE

ENV_SECRETS = {
    "HF_TOKEN": "hf_envPLANTEDtoken7Q2w9x",
    "AWS_SECRET_ACCESS_KEY": "awsPLANTEDsecret/k3Y+Zq81",
    "MLFLOW_TRACKING_PASSWORD": "mlflowPLANTEDpass5Rt",
    "MY_SERVICE_API_KEY": "apiPLANTEDkey0Vb6Nm",
}
MLFLOW_URI_PASSWORD = "uriPLANTEDpass7Xs"  # in MLFLOW_TRACKING_URI
DATABASE_PASSWORD = "dbPLANTEDpass3Hj"  # only inside a URL, in a variable no pattern names
NETRC_OUTSIDE = "netrcPLANTEDoutside8Kd"
DVC_URL_PASSWORD = "dvcPLANTEDurlpass2Lp"
DVC_LOCAL_PASSWORD = "dvcPLANTEDlocalpass9Wc"
NETRC_IN_TREE = "netrcPLANTEDintree4Fs"
RECIPE_TOKEN = "hf_recipePLANTEDtoken6Gu"
RECIPE_URL_PASSWORD = "recipePLANTEDurlpass1Ye"
PLANTED = [
    *ENV_SECRETS.values(), MLFLOW_URI_PASSWORD, DATABASE_PASSWORD, NETRC_OUTSIDE, DVC_URL_PASSWORD,
    DVC_LOCAL_PASSWORD, NETRC_IN_TREE, RECIPE_TOKEN, RECIPE_URL_PASSWORD,
]  # fmt: skip
# The files the secrets were planted in (the user's own); everything else is the platform's.
PLANTED_FILES = {".dvc/config", ".dvc/config.local", ".netrc", MICRO}


def _recipe_with_secrets(project: Path) -> None:
    """The micro recipe evaluating only pretrain, under comments a user might leave in it."""
    recipe = yaml.safe_load((project / MICRO).read_text())
    # Every writer still runs; fewer steps and instances only make it cheaper.
    recipe["evaluate"].update(checkpoints=["pretrain"], limit=2, spec_limit=1)
    for stage, steps in (("pretrain", 4), ("sft", 2), ("dpo", 2), ("rlvr", 1)):
        recipe[stage].update(steps=steps, warmup_steps=0, logging_steps=1)
    comments = (
        f"# hf_token: {RECIPE_TOKEN}\n"
        f"# tracking: https://bob:{RECIPE_URL_PASSWORD}@mlflow.example.invalid\n"
        f"# the token in my shell is {ENV_SECRETS['HF_TOKEN']}\n"
    )
    (project / MICRO).write_text(comments + yaml.safe_dump(recipe, sort_keys=False))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The project after a run with secrets planted: (project, scratch, outputs printed)."""
    base = tmp_path_factory.mktemp("secrets")
    project = make_project(base / "origin")
    netrc = base / "home-netrc"
    netrc.write_text(f"machine hub.example.invalid login alice password {NETRC_OUTSIDE}\n")
    env = {
        **environment(project, base), **ENV_SECRETS, "NETRC": str(netrc),
        "MLFLOW_TRACKING_USERNAME": "alice",
        "DATABASE_URL": f"postgresql://alice:{DATABASE_PASSWORD}@db.example.invalid/runs",
        # Down (nothing listens on the port): jobs and hooks spool every event.
        "MLFLOW_TRACKING_URI": f"http://alice:{MLFLOW_URI_PASSWORD}@127.0.0.1:{free_port()}",
    }  # fmt: skip
    for name in list(env):
        if name.startswith("REPROLM_MLFLOW"):
            env.pop(name)
    dvc = sys_dvc()
    started = time.perf_counter()
    run(project, env, "git", "init", "-q", "-b", "main")
    reprolm(project, env, "dvc", "init")  # default remote: ../reprolm-dvc-remote
    run(project, env, dvc, "remote", "modify", "--local", "local", "jobs", "2")
    (project / ".netrc").write_text("# netrc of this project\n")
    run(project, env, "git", "add", "-A")
    run(project, env, "git", "add", "-f", ".dvc/config.local", ".netrc")
    run(project, env, "git", "commit", "-q", "-m", "project")
    # The tree made dirty with credentials, as a user configuring storage would.
    run(project, env, dvc, "remote", "add", "backup",
        f"https://alice:{DVC_URL_PASSWORD}@dvc.example.invalid/store")  # fmt: skip
    run(project, env, dvc, "remote", "modify", "--local", "backup", "password", DVC_LOCAL_PASSWORD)
    (project / ".netrc").write_text(
        f"machine dvc.example.invalid login alice password {NETRC_IN_TREE}\n"
    )
    _recipe_with_secrets(project)
    reprolm(project, env, "dvc", "sync", "--recipe", MICRO)
    printed = []
    timings = {"setup_s": time.perf_counter() - started}
    release = load_plan(project / MICRO).release.manifest
    done = run(project, env, *SNAKEMAKE, "--cores", "2", release,
               "--configfile", MICRO)  # fmt: skip
    printed += [done.stdout, done.stderr]
    timings["snakemake_s"] = time.perf_counter() - started - timings["setup_s"]
    # Kept before the replay removes it (the spool is an output too).
    shutil.copytree(project / ".reprolm" / "mlflow-spool", base / "spool-kept")
    store = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlruns.db'}"}
    synced = reprolm(project, store, "mlflow", "sync")
    printed += [synced.stdout, synced.stderr]
    pushed = reprolm(project, env, "dvc", "push")
    printed += [pushed.stdout, pushed.stderr]
    timings["total_s"] = time.perf_counter() - started
    print("secrets run:", {name: round(value, 1) for name, value in timings.items()})
    return project, base, "\n".join(printed)


def _outputs(project: Path, base: Path) -> dict[str, bytes]:
    """Every file the platform (and DVC) wrote: the tree but .git and the user's planted files,
    the DVC remote and site cache."""
    files = {}
    roots = [project, base / "reprolm-dvc-remote", base / "dvc-site-cache", base / "spool-kept"]
    for root in roots:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(project).as_posix() if root == project else str(path)
            if not path.is_file() or path.is_symlink():
                continue
            if relative.startswith(".git/") or relative in PLANTED_FILES:
                continue
            files[relative] = path.read_bytes()
    return files


@pytest.mark.slow
def test_no_planted_secret_reaches_any_output(planted):
    project, base, printed = planted
    outputs = _outputs(project, base)
    # Every writer ran: manifests, job logs, Snakemake, the store, diffs, DVC, the release.
    for prefix in ("artifacts/release/", "logs/", ".snakemake/", ".reprolm/diffs/", ".dvc/cache/"):
        assert any(name.startswith(prefix) for name in outputs), prefix
    assert "mlruns.db" in outputs
    assert any("reprolm-dvc-remote" in name for name in outputs)
    spooled = [name for name in outputs if "spool-kept" in name and name.endswith(".json")]
    assert len(spooled) >= 12, spooled  # the workflow start, one event per job, the end
    leaks = {
        secret: sorted(name for name, data in outputs.items() if secret.encode() in data)
        for secret in PLANTED
    }
    leaks = {secret: names for secret, names in leaks.items() if names}
    assert not leaks, f"planted secrets found in outputs: {leaks}"
    shown = [secret for secret in PLANTED if secret in printed]
    assert not shown, f"planted secrets printed by snakemake / reprolm dvc: {shown}"


@pytest.mark.slow
def test_saved_diff_names_every_changed_file_and_keeps_the_recipe_change(planted):
    project, _, _ = planted
    manifest = json.loads((project / load_plan(project / MICRO).release.manifest).read_text())
    assert manifest["code"]["dirty"] is True
    patch = (project / ".reprolm/diffs" / f"{manifest['code']['diff_hash']}.patch").read_text()
    assert "withheld .dvc/config.local: a credentials file" in patch
    assert "withheld .netrc: a credentials file" in patch
    assert "scrubbed .dvc/config: 1 secret(s)" in patch
    assert "scrubbed config/micro.yaml: 3 secret(s)" in patch
    assert "url = https://alice:[redacted]@dvc.example.invalid/store" in patch
    assert "+  - pretrain" in patch  # the recipe change itself is kept
    assert "# hf_token: [redacted]" in patch


@pytest.mark.slow
def test_tracking_store_holds_the_runs_without_secrets(planted):
    project, _, _ = planted
    with sqlite3.connect(project / "mlruns.db") as db:
        runs = db.execute("select count(*) from runs").fetchone()[0]
        values = [v for (v,) in db.execute("select value from params")]
        values += [v for (v,) in db.execute("select value from tags")]
    assert runs >= 11  # the parent run and one child run per job
    assert values and not [v for v in values if any(s in (v or "") for s in PLANTED)]
