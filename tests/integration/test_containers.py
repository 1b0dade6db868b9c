"""Stage jobs inside the data image, with real podman (tests/integration/podman_harness.py).

The data image is built from containers/Dockerfile on a locally debootstrapped base; curate and
tokenize jobs then run in it, as the non-root image user, with the checkout bind-mounted and no
network, using the exact arguments Snakemake's plan gives them. They must produce the host's
artifact digests, and their manifests must name the image.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reprolm.plan import load_plan
from tests.integration.podman_harness import Podman, PodmanUnavailable, ensure_packages
from tests.support import MICRO, ROOT, checkout_env, make_checkout, reprolm, run_snakemake

TAG = "localhost/reprolm-data:test"
IMAGE_USER = "1000:1000"

# `make test` distributes whole modules (pytest-xdist --dist loadscope): one worker runs every
# test of this one, and its session fixture starts one podman storage and image build.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def podman(tmp_path_factory):
    """podman with a private config and storage for the session; skipped only when apt-get
    cannot install podman/runc/debootstrap (no route to the Debian mirror)."""
    try:
        ensure_packages()
    except PodmanUnavailable as error:
        pytest.skip(f"no podman: {error}")
    engine = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="session")
def data_image(podman) -> dict:
    """The data image, built once per session (the debootstrapped base is cached with it)."""
    return podman.build("data", TAG)


def planned_commands(checkout: Path, target: str) -> dict[str, list[str]]:
    """stage -> the arguments Snakemake would pass to ``python -m stages.<stage>`` (dry run)."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/local", "--cores",
         "1", "-n", "-p", target, "--configfile", MICRO],
        cwd=checkout, env=checkout_env(checkout), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    commands = {}
    for line in done.stdout.splitlines():
        if line.startswith("Shell command:"):
            words = shlex.split(line.removeprefix("Shell command:").split(" > ", 1)[0])
            module = words.index("-m") + 1
            commands[words[module].removeprefix("stages.")] = words[module + 1 :]
    return commands


def manifest(checkout: Path, job) -> dict:
    return json.loads((checkout / job.manifest).read_text())


def test_data_jobs_in_the_image_match_the_host(podman, data_image, tmp_path):
    plan = load_plan(ROOT / MICRO)
    world, evaldata, curate, tokenize = (
        plan.get(stage, stage) for stage in ("world", "evaldata", "curate", "tokenize")
    )

    # On the host: world, evaldata, curate and tokenize through Snakemake.
    host = make_checkout(tmp_path / "host")
    run_snakemake(host, tokenize.manifest)

    # In the image: the host's world artifact, then evaldata (the bundled spec datasets), curate
    # and tokenize with Snakemake's args.
    boxed = make_checkout(tmp_path / "boxed")
    shutil.copytree(host / world.artifact_dir, boxed / world.artifact_dir)
    commands = planned_commands(boxed, tokenize.manifest)
    assert set(commands) == {"evaldata", "curate", "tokenize"}
    subprocess.run(["chown", "-R", IMAGE_USER, str(boxed)], check=True)  # the image's user

    def run_in_image(stage: str, *env: str) -> float:
        started = time.monotonic()
        podman(
            "run", "--rm", "--network=none", "--volume", f"{boxed}:/work", "--workdir", "/work",
            "--env", "REPROLM_MLFLOW=off", *env, TAG,
            "/opt/venv/bin/python", "-m", f"stages.{stage}", *commands[stage], timeout=600,
        )  # fmt: skip
        return time.monotonic() - started

    # curate: no launcher variable; tokenize: as the Snakemake rule launches it, with the
    # by-digest reference in REPROLM_IMAGE.
    seconds = {"evaldata": run_in_image("evaldata"), "curate": run_in_image("curate")}
    reference = f"localhost/reprolm-data@{data_image['digest']}"
    seconds["tokenize"] = run_in_image("tokenize", "--env", f"REPROLM_IMAGE={reference}")

    for job in (evaldata, curate, tokenize):
        inside, outside = manifest(boxed, job), manifest(host, job)
        assert inside["digest"] == outside["digest"], f"{job.key}: digest differs in the image"
        assert inside["files"] == outside["files"]
        assert outside["environment"]["container_image"] is None
        assert (boxed / job.artifact_dir).stat().st_uid == 1000  # ran as the non-root user
    # Without --privileged podman's /run/.containerenv names only the engine: the runtime and
    # the image's family are known, the image only from the launcher.
    curate_image = manifest(boxed, curate)["environment"]["container_image"]
    assert curate_image == {
        "runtime": "podman", "image": None, "digest": None, "family": "data", "image_id": None,
    }  # fmt: skip
    tokenize_image = manifest(boxed, tokenize)["environment"]["container_image"]
    assert tokenize_image["image"] == "localhost/reprolm-data"
    assert tokenize_image["digest"] == data_image["digest"]
    assert tokenize_image["runtime"] == "podman"

    # rebuild --as-recorded runs tokenize again in the image with the recorded digest (podman,
    # the local image of that digest) and gets the same bytes; curate recorded no digest.
    private = {name: podman.env[name] for name in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")}
    done = reprolm(boxed, "rebuild", "--as-recorded", "--verify", "--json", tokenize.artifact_dir,
                   env=private)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    placement = json.loads(done.stdout)["placement"]
    assert placement["same"] and placement["rebuilt"]["digest"] == data_image["digest"], placement
    done = reprolm(boxed, "rebuild", "--as-recorded", "--json", curate.artifact_dir, env=private)
    assert done.returncode == 2 and "without an image digest" in json.loads(done.stdout)["error"]

    # The image: non-root, labelled, and nothing of the build's pip settings in it.
    assert data_image["user"] == IMAGE_USER
    assert data_image["labels"]["org.opencontainers.image.title"] == "reprolm-data"
    leftovers = podman(
        "run", "--rm", "--network=none", TAG, "sh", "-c",
        "cat /etc/pip.conf 2>/dev/null; ls -A /wheels 2>/dev/null; id -u",
    ).stdout.decode()  # fmt: skip
    assert leftovers.split() == ["1000"], leftovers

    # Figures for the record (pytest -s shows them).
    started = time.monotonic()
    podman("run", "--rm", "--network=none", TAG, "true")
    overhead = time.monotonic() - started
    figures = {
        **{key: round(value, 1) for key, value in podman.timings.items()},
        "image_size_mb": round(data_image["size"] / 1e6),
        "container_start_s": round(overhead, 2),
        **{f"{stage}_in_image_s": round(value, 1) for stage, value in seconds.items()},
    }
    print(f"\ncontainer figures: {json.dumps(figures)}")


def test_build_of_a_missing_family_names_the_dockerfile(podman):
    with pytest.raises(ValueError, match=re.escape("no image family 'nope'")):
        podman.build("nope", "localhost/reprolm-nope:test")
