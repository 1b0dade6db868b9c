"""A job stopped by the machine: a full disk, a file size limit, Ctrl-C. Real job processes.

Each case ends the job with one paragraph and no traceback, removes its partial output and
leaves the previous artifact of the same path whole (it still verifies against its manifest).

* Disk full: the real world job writes into a 2 MiB tmpfs mounted in a user + mount namespace
  (``unshare -Urm``; no root needed, and as root no host mount), filled up to 48 KiB.
* File size limit: the same job under ``RLIMIT_FSIZE`` (EFBIG), without namespaces.
* Disk quota (EDQUOT) cannot be set up without a quota-enabled file system: it is raised by a
  stage inside the real runner, the one place it is faked.
* Ctrl-C: SIGINT sent to a running job process (the real runner, a stage that waits), to a
  two-rank torchrun job's process group under the launcher's wait, and to ``reprolm verify``.
* A rank aborting (SIGABRT) at exit after rank 0 installed the artifact, as the flaky ZeRO-2
  rank did: real torchrun, the launcher counts the job done; aborting before the install fails.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from reprolm.fingerprint import fingerprint
from reprolm.manifest import read_manifest, verify_payload
from reprolm.recipe import load_recipe, stage_config
from tests.integration.namespaces import needs_namespaces
from tests.support import MICRO, ROOT, checkout_env


def world_config(seed: int = 1234) -> dict:
    recipe = yaml.safe_load((ROOT / MICRO).read_text())
    return stage_config(load_recipe({**recipe, "seed": seed}), "world")


def output_for(artifacts: Path, config: dict) -> Path:
    return artifacts / "world" / f"world-{fingerprint('world', config, {})}"


def job_env() -> dict[str, str]:
    return checkout_env(ROOT, REPROLM_MLFLOW="off")


def world_job(config: dict, output: Path) -> list[str]:
    return [sys.executable, "-m", "stages.world", "--config-json", json.dumps(config),
            "--output", str(output)]  # fmt: skip


def assert_left_whole(output: Path, digest: str) -> None:
    """The previous artifact verifies, and no scratch or old copy is left beside it."""
    assert read_manifest(output)["digest"] == digest
    assert verify_payload(output) == []
    leftovers = [
        p.name for p in output.parent.iterdir() if ".partial-" in p.name or ".old-" in p.name
    ]
    assert leftovers == []


@pytest.mark.slow
@needs_namespaces
def test_disk_full_during_a_real_job_names_the_path_and_free_space(tmp_path):
    config = world_config()
    artifacts = tmp_path / "artifacts"
    (artifacts / "world").mkdir(parents=True)
    output = output_for(artifacts, config)
    result = tmp_path / "result"
    result.mkdir()
    job = " ".join(f"'{arg}'" for arg in world_job(config, output))
    # Inside the namespace: mount, install the artifact once, fill the disk, run the job again
    # (Snakemake's --forcerun), then copy what is left out of the tmpfs before it vanishes.
    script = textwrap.dedent(f"""\
        set -u
        mount -t tmpfs -o size=2m tmpfs '{artifacts / "world"}'
        {job} > '{result}/first.out' 2>&1 || exit 3
        head -c 4m /dev/zero > '{artifacts}/world/filler' 2>/dev/null
        truncate -s -48K '{artifacts}/world/filler'
        {job} > '{result}/out' 2> '{result}/err'
        echo $? > '{result}/rc'
        rm '{artifacts}/world/filler'
        cp -a '{artifacts}/world' '{result}/after'
    """)
    done = subprocess.run(["unshare", "-Urm", "bash", "-c", script], cwd=tmp_path, env=job_env(),
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, (done.stderr, (result / "first.out").read_text())
    stderr = (result / "err").read_text()
    assert int((result / "rc").read_text()) == 1, stderr
    assert "Traceback" not in stderr, stderr
    (message,) = stderr.strip().splitlines()
    assert message.startswith("error: stage world: no space left on device writing ")
    assert f"{output.parent}/.{output.name}.partial-" in message, "names the file being written"
    assert " KiB free on its disk" in message or " B free on its disk" in message
    assert f"any previous artifact at {output} is untouched" in message and "rerun" in message
    after = result / "after" / output.name
    first = json.loads((after / "provenance.json").read_text())
    assert_left_whole(after, first["digest"])


@pytest.mark.slow
def test_file_size_limit_during_a_real_job_keeps_the_previous_artifact(tmp_path):
    config = world_config()
    output = output_for(tmp_path / "artifacts", config)
    env = job_env()
    subprocess.run(world_job(config, output), cwd=tmp_path, env=env, check=True, timeout=300,
                   capture_output=True)  # fmt: skip
    before = read_manifest(output)["digest"]

    def limit() -> None:  # 16 KiB: train/sft.jsonl (~18 KiB) cannot be written
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    done = subprocess.run(world_job(config, output), cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=300, preexec_fn=limit)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "file too large for this process's file size limit (ulimit -f) writing " in done.stderr
    assert "Nothing was installed" in done.stderr and "Raise the file size limit" in done.stderr
    assert_left_whole(output, before)


STAND_IN = """
import os, sys, time
from reprolm.runner import main

def run(config, inputs, output_dir, context):
    (output_dir / "half.txt").write_text("partial")
    if os.environ.get("FAULT") == "abort-early" and context.rank == 1:
        os.abort()  # before rank 0 could install anything
    if os.environ.get("FAULT") == "wait":
        (output_dir.parent / f"started-{os.environ.get('RANK', '0')}").write_text("")
        time.sleep(300)
    if os.environ.get("FAULT") == "quota":
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(output_dir / "half.txt"))
    if os.environ.get("FAULT") == "text":
        raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")
    return {"count": 1}

import errno
# teardown=True: main returns, so that the code below can die at exit as a rank once did.
main("world", run, uses_torch=False, argv=sys.argv[1:], teardown=True)
if os.environ.get("FAULT") == "abort-at-exit" and os.environ.get("RANK") == "1":
    # As the flaky ZeRO-2 rank did: die at exit, once rank 0 has installed the artifact.
    manifest = os.path.join(sys.argv[sys.argv.index("--output") + 1], "provenance.json")
    while not os.path.exists(manifest):
        time.sleep(0.05)
    os.abort()
"""


def stand_in(tmp_path: Path, output: Path, config: dict, fault: str = "", **popen):
    args = [sys.executable, "-c", STAND_IN, "--config-json", json.dumps(config),
            "--output", str(output)]  # fmt: skip
    env = {**job_env(), "FAULT": fault}
    return subprocess.Popen(args, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **popen)  # fmt: skip


def test_ctrl_c_during_a_running_job_exits_130_with_one_line(tmp_path):
    config = world_config()
    output = output_for(tmp_path / "artifacts", config)
    first = stand_in(tmp_path, output, config)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    before = read_manifest(output)["digest"]
    job = stand_in(tmp_path, output, config, "wait")
    started = output.parent / "started-0"
    deadline = time.monotonic() + 120
    while not started.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists(), job.communicate()
    assert any(".partial-" in p.name for p in output.parent.iterdir()), "it was mid-write"
    job.send_signal(signal.SIGINT)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.strip() == (
        f"interrupted: stage world stopped; nothing installed (any previous artifact at {output} "
        "is untouched); rerun to continue (it starts again)"
    )
    started.unlink()
    assert_left_whole(output, before)


@pytest.mark.parametrize("fault", ["quota", "text"])
def test_quota_and_library_disk_errors_give_the_same_paragraph(tmp_path, fault):
    config = world_config()
    output = output_for(tmp_path / "artifacts", config)
    job = stand_in(tmp_path, output, config, fault)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 1 and "Traceback" not in stderr, stderr
    cause = "disk quota exceeded" if fault == "quota" else "no space left on device"
    assert f"error: stage world: {cause} writing {output.parent}/.{output.name}.partial-" in stderr
    assert " free on its disk" in stderr
    assert not output.exists() and not any(output.parent.iterdir())


def test_edquot_is_no_room():
    from reprolm.jobfaults import no_room

    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded", "/x/model.safetensors")
    assert no_room(wrapped) == ("disk quota exceeded", Path("/x/model.safetensors"))
    assert no_room(OSError(errno.EACCES, "Permission denied")) is None
    assert os.strerror(errno.ENOSPC) == "No space left on device"


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_cli_command_exits_130_with_one_line(tmp_path):
    """``reprolm verify`` re-hashing a 16 GiB payload file (sparse: no disk used) gets SIGINT
    once it is reading; it says so in one line and exits 130."""
    config = world_config()
    output = output_for(tmp_path / "artifacts", config)
    assert stand_in(tmp_path, output, config).wait(timeout=120) == 0
    os.truncate(output / "half.txt", 16 * 1024**3)
    command = [sys.executable, "-m", "reprolm.cli", "verify", str(output)]
    # A shell without job control starts background commands (CI scripts, `pytest &`) with
    # SIGINT ignored, and Python keeps an ignored SIGINT ignored: restore it, as a terminal has.
    job = subprocess.Popen(command, cwd=tmp_path, env=job_env(), text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           preexec_fn=_sigint_default)  # fmt: skip
    io = Path(f"/proc/{job.pid}/io")
    deadline = time.monotonic() + 120
    while job.poll() is None and time.monotonic() < deadline:
        read = int(
            next(line for line in io.read_text().splitlines() if line.startswith("rchar")).split()[
                1
            ]
        )
        if read > 256 * 1024**2:  # well into the payload
            break
        time.sleep(0.05)
    assert job.poll() is None, "verify ended before it could be interrupted"
    job.send_signal(signal.SIGINT)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 130, stderr
    assert stderr.strip() == "reprolm verify: interrupted", stderr


def torchrun_job(tmp_path: Path, output: Path, config: dict, fault: str, **popen):
    """The launcher's wait (reprolm.launch.run_and_judge) on real torchrun with 2 ranks, each
    the real runner with the stand-in stage."""
    script = tmp_path / "rank.py"
    script.write_text(STAND_IN)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
                "--standalone", "--nnodes=1", str(script), "--config-json", json.dumps(config),
                "--output", str(output)]  # fmt: skip
    driver = (
        "import os, sys; from pathlib import Path; from reprolm.launch import run_and_judge; "
        "sys.exit(run_and_judge(sys.argv[2:], dict(os.environ), Path(sys.argv[1])))"
    )
    return subprocess.Popen([sys.executable, "-c", driver, str(output), *torchrun],
                            cwd=tmp_path, env={**job_env(), "FAULT": fault}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)  # fmt: skip


def test_a_rank_aborting_at_exit_after_the_install_is_a_finished_job(tmp_path):
    config = world_config()
    output = output_for(tmp_path / "artifacts", config)
    job = torchrun_job(tmp_path, output, config, "abort-early")
    _, stderr = job.communicate(timeout=300)
    assert job.returncode != 0, stderr
    assert not (output / "provenance.json").exists()
    job = torchrun_job(tmp_path, output, config, "abort-at-exit")
    _, stderr = job.communicate(timeout=300)
    assert job.returncode == 0, stderr
    assert "exitcode  : -6" in stderr, "rank 1 really aborted (SIGABRT)"
    assert f"rank 0 had installed {output} and its payload verifies" in stderr
    assert stderr.rstrip().endswith("a rank died at exit: the job counts as done")
    assert verify_payload(output) == []


def test_ctrl_c_during_a_two_process_torchrun_job_leaves_no_traceback(tmp_path):
    """Real torchrun (2 ranks, each the real runner) under the launcher's wait; SIGINT to the
    whole process group, as a terminal's Ctrl-C: torchrun's own traceback is left out."""
    config = world_config()
    output = output_for(tmp_path / "artifacts", config)
    assert stand_in(tmp_path, output, config).wait(timeout=120) == 0
    before = read_manifest(output)["digest"]
    job = torchrun_job(tmp_path, output, config, "wait", start_new_session=True)
    deadline = time.monotonic() + 180
    markers = [output.parent / f"started-{rank}" for rank in (0, 1)]
    while not all(m.exists() for m in markers) and job.poll() is None:
        assert time.monotonic() < deadline, "the ranks did not start"
        time.sleep(0.1)
    os.killpg(job.pid, signal.SIGINT)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert stderr.count("interrupted: stage world stopped; nothing installed") == 2, stderr
    assert stderr.rstrip().endswith("rerun to continue")
    for marker in markers:
        marker.unlink()
    assert_left_whole(output, before)
