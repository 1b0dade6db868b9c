"""Where a job ran, and running it there again: ``reprolm rebuild --as-recorded``.

A manifest records the job's placement in three places: ``execution.launch`` (reprolm.launch:
nodes, processes per node, DeepSpeed spec, micro batch; absent for a plain single process),
``environment.accelerators`` (the GPUs the job saw: a training job on a machine with CUDA trains
on it) and ``environment.container_image`` (the image, by digest). :func:`refusals` names what
this machine lacks to run the job that way; :func:`job_command` starts it through the same
launcher, in the same image. Placement is never fingerprinted: it may change float rounding
(reduction order), which is why a rebuild reports it beside the bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reprolm.containers import IMAGE_PYTHON, IMAGE_VARIABLE
from reprolm.launch import NO_DEEPSPEED, LaunchError, parse_deepspeed_spec

LAUNCH_KEYS = ("nodes", "procs_per_node", "deepspeed", "micro_batch_size")
# The Placement fields a rebuild compares with the recorded ones.
COMPARED = (*LAUNCH_KEYS, "device", "gpus", "gpu_model", "digest")
# What reaches the job inside an image (the runner pins threads and numerics itself).
CONTAINER_ENV = (
    "PYTHONPATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONSAFEPATH",
    "CUDA_VISIBLE_DEVICES",
    "HF_HUB_OFFLINE",
    "REPROLM_MLFLOW",
    "MLFLOW_TRACKING_URI",
)


class PlacementError(RuntimeError):
    """The recorded placement cannot be given here after all (the message says why)."""


@dataclass(frozen=True)
class Placement:
    """How a job was (or is to be) placed."""

    nodes: int = 1
    procs_per_node: int = 1
    deepspeed: str = NO_DEEPSPEED
    micro_batch_size: int = 0
    launched: bool = False  # started by reprolm.launch (execution.launch recorded)
    device: str = "cpu"  # "cuda" when the job saw GPUs
    gpus: int = 0
    gpu_model: str | None = None
    runtime: str | None = None  # container runtime, None on the host
    image: str | None = None
    digest: str | None = None
    unknown: tuple[str, ...] = ()  # what of the record this reprolm cannot read

    @property
    def processes(self) -> int:
        return self.nodes * self.procs_per_node

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["processes"] = self.processes
        record["unknown"] = list(self.unknown)
        return record


def _launch(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``execution.launch`` as Placement fields, and what in it is not understood."""
    launch = manifest.get("execution", {}).get("launch")
    world = manifest.get("environment", {}).get("world_size", 1)
    if launch is None:
        if world not in (None, 1):
            return {}, [
                f"environment.world_size={world} but no execution.launch: the job was "
                "started by a launcher reprolm does not know"
            ]
        return {}, []
    if not isinstance(launch, dict):
        return {}, [f"execution.launch is not an object: {launch!r}"]
    problems = [
        f"execution.launch.{key} is unknown" for key in sorted(set(launch) - {*LAUNCH_KEYS})
    ]
    fields: dict[str, Any] = {"launched": True}
    for key in ("nodes", "procs_per_node", "micro_batch_size"):
        value = launch.get(key, 0 if key == "micro_batch_size" else None)
        least = 0 if key == "micro_batch_size" else 1
        if isinstance(value, int) and not isinstance(value, bool) and value >= least:
            fields[key] = value
        else:
            problems.append(f"execution.launch.{key}={value!r} is not a count >= {least}")
    spec = launch.get("deepspeed", NO_DEEPSPEED)
    try:
        parse_deepspeed_spec(str(spec))
        fields["deepspeed"] = str(spec)
    except LaunchError:
        problems.append(
            f"execution.launch.deepspeed={spec!r} is not a DeepSpeed spec reprolm knows"
        )
    return fields, problems


def placement_of(manifest: Mapping[str, Any]) -> Placement:
    """The placement a manifest records (unreadable parts listed in ``unknown``)."""
    fields, problems = _launch(manifest)
    environment = manifest.get("environment", {})
    gpus = (environment.get("accelerators") or {}).get("gpu_count") or 0
    if gpus:
        fields.update(
            device="cuda", gpus=int(gpus), gpu_model=environment["accelerators"].get("gpu_model")
        )
    image = environment.get("container_image")
    if image:
        fields.update(
            runtime=image.get("runtime") or "unknown",
            image=image.get("image"),
            digest=image.get("digest"),
        )
    return Placement(**fields, unknown=tuple(problems))


def describe(placement: Placement) -> str:
    """``2 processes (1 node x 2, DeepSpeed zero2) on cpu, on the host``."""
    count = placement.processes
    words = f"{count} process{'es' if count != 1 else ''}"
    details = (
        [
            f"{placement.nodes} node{'s' if placement.nodes != 1 else ''} x "
            f"{placement.procs_per_node}"
        ]
        if count > 1
        else []
    )
    if placement.deepspeed != NO_DEEPSPEED:
        details.append(f"DeepSpeed {placement.deepspeed}")
    if placement.micro_batch_size:
        details.append(f"micro batch {placement.micro_batch_size}")
    if details:
        words += f" ({', '.join(details)})"
    device = f"{placement.gpus} x {placement.gpu_model or 'GPU'}" if placement.gpus else "cpu"
    where = (
        f"in {placement.image or '?'}@{placement.digest[:19]}"
        if placement.digest
        else (f"in a {placement.runtime} container" if placement.runtime else "on the host")
    )
    return f"{words} on {device}, {where}"


def differences(recorded: Placement, rebuilt: Placement) -> list[str]:
    """What of the placement differs: processes, DeepSpeed, device, image."""
    return [name for name in COMPARED if getattr(recorded, name) != getattr(rebuilt, name)]


def gpus_here() -> int:
    """CUDA devices this process can see (what a job started here would train on)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def slurm_nodes(environ: Mapping[str, str]) -> int:
    """Nodes of the SLURM allocation this runs in (0 outside one)."""
    if not environ.get("SLURM_JOB_ID"):
        return 0
    count = environ.get("SLURM_JOB_NUM_NODES") or environ.get("SLURM_NNODES") or "0"
    return int(count) if count.isdigit() else 0


def local_image(digest: str, podman: str = "podman") -> str | None:
    """The local image id of the image with manifest ``digest`` (None when not here)."""
    done = subprocess.run(
        [podman, "images", "--digests", "--no-trunc", "--format", "{{.Digest}} {{.ID}}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        found, _, image_id = line.partition(" ")
        if found == digest and image_id:
            return image_id.strip()
    return None


def _container_refusals(placement: Placement) -> list[str]:
    if placement.runtime is None:
        return []
    if not placement.digest:
        return [
            f"environment.container_image records a {placement.runtime} container without an "
            "image digest: the image it ran in cannot be identified, so not run in again"
        ]
    reference = f"{placement.image or '<image>'}@{placement.digest}"
    if shutil.which("podman") is None:
        return [
            f"environment.container_image is {reference}, and this machine has no container "
            "runtime (podman is not on PATH); rebuild --as-recorded runs images with podman"
        ]
    if local_image(placement.digest) is None:
        return [
            f"environment.container_image is {reference}, which podman does not have here "
            f"(`podman images --digests`): `podman pull {reference}` (or load it) first"
        ]
    return []


def refusals(placement: Placement, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Why this machine cannot run ``placement`` as recorded (empty: it can)."""
    reasons = [f"{problem}: the recorded launcher is unknown" for problem in placement.unknown]
    if placement.device == "cuda":
        have = gpus_here()
        need = placement.procs_per_node if placement.launched else 1
        if have < need:
            reasons.append(
                f"environment.accelerators records {placement.gpus} GPU(s) "
                f"({placement.gpu_model or 'model unknown'}): the job ran on CUDA with {need} "
                f"process(es) per node, and this machine has {have} usable GPU(s) "
                "(torch.cuda.is_available() / device_count()); rebuild it on a GPU machine"
            )
    allocated = slurm_nodes(environ)
    if placement.nodes > 1 and allocated < placement.nodes:
        here = f"an allocation of {allocated} node(s)" if allocated else "not in one"
        reasons.append(
            f"execution.launch.nodes={placement.nodes}: a multi-node job is rebuilt inside a "
            f"SLURM allocation of {placement.nodes} nodes (e.g. `salloc -N {placement.nodes}`), "
            f"and this is {here}"
        )
    return reasons + _container_refusals(placement)


def job_command(
    placement: Placement | None, stage: str, job_args: list[str], mounts: list[Path]
) -> tuple[list[str], dict[str, str]]:
    """The argv (and environment overrides) that run the job: ``placement`` None is today's
    single local process; else the recorded launcher, device and image."""
    # -P: the source tree comes from PYTHONPATH, never from the working directory.
    if placement is None:
        return [sys.executable, "-P", "-m", f"stages.{stage}", *job_args], {}
    python = IMAGE_PYTHON if placement.digest else sys.executable
    module = [f"stages.{stage}", *job_args]
    if placement.launched:
        module = [
            "reprolm.launch",
            f"--nodes={placement.nodes}",
            f"--procs-per-node={placement.procs_per_node}",
            f"--deepspeed={placement.deepspeed}",
            f"--micro-batch-size={placement.micro_batch_size}",
            "--",
            *module,
        ]
    # PYTHONSAFEPATH: torchrun's workers, too, never import from the working directory.
    env = {"PYTHONSAFEPATH": "1"}
    if placement.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU job stays on the CPU on a GPU machine
    command = [python, "-P", "-m", *module]
    if placement.digest:
        command = container_command(placement, command, mounts)
    return command, env


def container_command(placement: Placement, command: list[str], mounts: list[Path]) -> list[str]:
    """``podman run`` of ``command`` in the recorded image (by local id), ``mounts`` bound at
    their own paths, no network, as this user, the working directory the current one."""
    image_id = local_image(placement.digest or "")
    if image_id is None:
        raise PlacementError(f"the image with digest {placement.digest} is no longer here")
    user = ["--user=0:0"] if os.getuid() == 0 else ["--userns=keep-id"]
    volumes = [f"--volume={path}:{path}" for path in dict.fromkeys(str(p) for p in mounts)]
    gpus = ["--device=nvidia.com/gpu=all"] if placement.device == "cuda" else []
    env = [f"--env={name}" for name in CONTAINER_ENV]  # passed on from the launcher's env
    reference = f"{placement.image or 'image'}@{placement.digest}"
    return [
        "podman",
        "run",
        "--rm",
        "--network=none",
        "--ipc=host",
        *user,
        *volumes,
        *gpus,
        f"--workdir={Path.cwd()}",
        *env,
        f"--env={IMAGE_VARIABLE}={reference}",
        image_id,
        *command,
    ]
