"""Start a training job: one process, torchrun on one node, or srun + torchrun over nodes.

The training rules' shell line is ``python -m reprolm.launch --nodes N --procs-per-node P
--deepspeed SPEC --micro-batch-size M -- stages.<stage> <job arguments>``; the values come from
the job's Snakemake resources (the recipe's ``resources.<stage>``), which are not rerun triggers,
so a job moved to more GPUs is not rerun. This module picks the command and ``exec``s it:

* one process: ``python -m stages.<stage> ...`` (as before);
* one node, several processes: ``python -m torch.distributed.run --standalone`` (torchrun). Under
  SLURM the jobstep plugin already runs the job inside a one-task step holding the node's GPUs;
* several nodes (SLURM only): ``srun --ntasks-per-node=1`` starts one torchrun per node, which
  meet (c10d rendezvous) on the first host of ``$SLURM_JOB_NODELIST``.

With a DeepSpeed SPEC the job's DeepSpeed JSON is generated here (reprolm.deepspeed_config),
written beside the artifact directory and handed to the stage in ``REPROLM_DEEPSPEED_CONFIG``.

A multi-process job runs as this module's child, not by ``exec``, so that its exit can be
judged (``judge_exit``): a rank that dies after rank 0 installed a complete artifact (a new
manifest, the payload verifies against it) is a finished job with a warning in the log, since
Snakemake would otherwise delete a correct output; an incomplete or old artifact never is.
Ctrl-C waits for torchrun to stop its workers, then exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reprolm.canonical import dump_json
from reprolm.deepspeed_config import DeepSpeedConfigError, batch_split, deepspeed_config
from reprolm.hashing import MANIFEST_NAME
from reprolm.numerics import NumericsError, pin

EXIT_INTERRUPTED = 130

DEEPSPEED_ENV = "REPROLM_DEEPSPEED_CONFIG"
LAUNCH_ENV = "REPROLM_LAUNCH"
RDZV_PORT = 29500
NO_DEEPSPEED = "none"
OFFLOAD_FLAGS = ("offload_optimizer", "offload_params")


class LaunchError(RuntimeError):
    """The job cannot be launched as its resources ask."""


def deepspeed_spec(block: Mapping[str, Any] | None) -> str:
    """``resources.<stage>.deepspeed`` as one shell-safe token: ``zero2+offload_optimizer``."""
    if not block:
        return NO_DEEPSPEED
    parts = [f"zero{block.get('zero_stage', 2)}"]
    parts += [flag for flag in OFFLOAD_FLAGS if block.get(flag)]
    return "+".join(parts)


def parse_deepspeed_spec(spec: str) -> dict[str, Any] | None:
    """The inverse of :func:`deepspeed_spec` (None for ``none``)."""
    if spec == NO_DEEPSPEED:
        return None
    head, *flags = spec.split("+")
    if not head.startswith("zero") or not head[4:].isdigit() or set(flags) - set(OFFLOAD_FLAGS):
        raise LaunchError(f"--deepspeed {spec!r}: expected 'none' or zero<N>[+offload_...]")
    return {"zero_stage": int(head[4:]), **{flag: flag in flags for flag in OFFLOAD_FLAGS}}


def launch_command(
    module: str,
    args: Sequence[str],
    *,
    nodes: int = 1,
    procs_per_node: int = 1,
    python: str = sys.executable,
    head_node: str | None = None,
    job_id: str | None = None,
    port: int = RDZV_PORT,
) -> list[str]:
    """The argv that starts ``python -m module args`` on ``nodes`` x ``procs_per_node``."""
    if nodes < 1 or procs_per_node < 1:
        raise LaunchError(f"nodes={nodes} and procs_per_node={procs_per_node} must be >= 1")
    stage = [python, "-m", module, *args]
    if nodes * procs_per_node == 1:
        return stage
    torchrun = [python, "-m", "torch.distributed.run", f"--nproc-per-node={procs_per_node}"]
    if nodes == 1:
        return [*torchrun, "--standalone", "--nnodes=1", *stage[1:]]
    if not head_node or not job_id:
        raise LaunchError(
            f"a {nodes}-node job needs SLURM (no SLURM_JOB_NODELIST/SLURM_JOB_ID here): run it "
            "with --profile workflow/profiles/slurm, or set the stage's resources.nodes to 1"
        )
    return [
        "srun",
        f"--nodes={nodes}",
        f"--ntasks={nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        *torchrun,
        f"--nnodes={nodes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={head_node}:{port}",
        f"--rdzv-id={job_id}",
        *stage[1:],
    ]


def slurm_head_node(environ: Mapping[str, str] = os.environ) -> str | None:
    """The first host of ``$SLURM_JOB_NODELIST`` (expanded by ``scontrol show hostnames``)."""
    nodelist = environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        return None
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    ).stdout.split()
    return hosts[0] if hosts else None


def _job_option(args: Sequence[str], name: str) -> str:
    for position, arg in enumerate(args):
        if arg == name and position + 1 < len(args):
            return args[position + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise LaunchError(f"the job arguments lack {name} (needed for its DeepSpeed config)")


def _job_config(args: Sequence[str]) -> dict[str, Any]:
    try:
        return json.loads(_job_option(args, "--config-json"))
    except json.JSONDecodeError as error:
        raise LaunchError(f"--config-json is not valid JSON: {error}") from None


def write_deepspeed_config(
    stage: str, args: Sequence[str], placement: Mapping[str, Any], world: int, micro: int | None
) -> Path:
    """Generate the job's DeepSpeed JSON and write it as ``.<artifact>.deepspeed.json``."""
    config = _job_config(args)
    output = Path(_job_option(args, "--output"))
    generated = deepspeed_config(stage, config, placement, world, micro)
    path = output.parent / f".{output.name}.deepspeed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_json(generated), encoding="utf-8")
    return path


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        raise LaunchError("usage: python -m reprolm.launch [options] -- stages.<stage> ARGS...")
    split = list(argv).index("--")
    parser = argparse.ArgumentParser(prog="python -m reprolm.launch", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--procs-per-node", type=int, default=1)
    parser.add_argument("--deepspeed", default=NO_DEEPSPEED, help="none | zero<N>[+offload_...]")
    parser.add_argument("--micro-batch-size", type=int, default=0, help="0: batch / processes")
    parser.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    options = parser.parse_args(argv[:split])
    job = list(argv[split + 1 :])
    if not job or not job[0].startswith("stages."):
        raise LaunchError("after --, name the stage module: stages.<stage> ARGS...")
    return options, job


def main(argv: Sequence[str] | None = None) -> None:
    try:
        options, (module, *args) = _parse(sys.argv[1:] if argv is None else argv)
        placement = parse_deepspeed_spec(options.deepspeed)
        world = options.nodes * options.procs_per_node
        env = dict(os.environ)
        pin(env)  # torchrun workers get the numeric code path too (reprolm.numerics)
        stage = module.split(".", 1)[1]
        if world > 1:
            # Refuse a batch that does not split before any process starts.
            batch_split(stage, _job_config(args), world, options.micro_batch_size or None)
        if world > 1 or placement is not None:
            # Recorded in the manifest (execution.launch): how to start the job again.
            env[LAUNCH_ENV] = json.dumps(
                {
                    "nodes": options.nodes,
                    "procs_per_node": options.procs_per_node,
                    "deepspeed": options.deepspeed,
                    "micro_batch_size": options.micro_batch_size,
                },
                sort_keys=True,
            )
        if placement is not None:
            path = write_deepspeed_config(
                stage, args, placement, world, options.micro_batch_size or None
            )
            env[DEEPSPEED_ENV] = str(path.resolve())
        command = launch_command(
            module,
            args,
            nodes=options.nodes,
            procs_per_node=options.procs_per_node,
            head_node=slurm_head_node() if options.nodes > 1 else None,
            job_id=os.environ.get("SLURM_JOB_ID"),
        )
    except (LaunchError, DeepSpeedConfigError, NumericsError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"reprolm.launch: {shlex.join(command)}", file=sys.stderr, flush=True)
    if options.dry_run:
        return
    if world == 1:
        os.execvpe(command[0], command, env)
    sys.exit(run_and_judge(command, env, Path(_job_option(args, "--output"))))


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, or None: an install writes a new manifest file, while a
    manifest put back from its kept hard link (reprolm.keep) is the old one."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def judge_exit(returncode: int, output: Path, before: tuple[int, int] | None) -> tuple[int, str]:
    """The launcher's exit code for a job whose processes exited ``returncode``, and a log line.

    ``before``: ``file_identity`` of the artifact's kept manifest link when the job started
    (the previous artifact's manifest, None if none). A failure counts as success only when
    this job installed the artifact (its manifest is another file than ``before``, for the
    fingerprint the directory is named after) and the payload verifies against it.
    """
    if returncode == 0:
        return 0, ""
    from reprolm.manifest import ManifestError, read_manifest, verify_payload

    now = file_identity(output / MANIFEST_NAME)
    if now is None or now == before:
        return returncode, ""
    try:
        manifest = read_manifest(output)
        problems = verify_payload(output, manifest)
    except (ManifestError, OSError):
        return returncode, ""
    if problems or not output.name.endswith(f"-{manifest.get('fingerprint')}"):
        return returncode, ""
    return 0, (
        f"reprolm.launch: warning: the job's processes exited {returncode} after rank 0 had "
        f"installed {output} and its payload verifies against its manifest (digest "
        f"{str(manifest.get('digest'))[:16]}); a rank died at exit: the job counts as done"
    )


TORCHRUN_LOG_LINE = re.compile(r"^[EWI]\d{4} \d\d:\d\d:\d\d")  # torch.distributed.elastic's
# torchrun's first word on a Ctrl-C; it may reach the log before this process's own SIGINT
# handler has run, so the reader starts holding lines back from here.
TORCHRUN_SIGINT = re.compile(r"Received (2|SIGINT) death signal")


def without_torchrun_report(lines: Sequence[str]) -> list[str]:
    """``lines`` without torchrun's own account of a stop: its log lines, the traceback of its
    ``SignalException`` or ``ChildFailedError`` and that error's ``====`` failure table."""
    kept: list[str] = []
    skipping, rules = "", 0
    for line in lines:
        if skipping == "traceback":
            if line.startswith("torch.distributed.elastic"):
                skipping, rules = ("table", 0) if "ChildFailedError" in line else ("", 0)
            continue
        if skipping == "table":
            rules += line.startswith("=====")
            skipping = "" if rules == 2 else "table"
            continue
        if line.startswith("Traceback (most recent call last):"):
            skipping = "traceback"
        elif not TORCHRUN_LOG_LINE.match(line):
            kept.append(line)
    return kept


def run_and_judge(command: Sequence[str], env: Mapping[str, str], output: Path) -> int:
    """Run a multi-process job, wait for it (through Ctrl-C: torchrun stops its workers) and
    return the exit code ``judge_exit`` gives it.

    The job's stderr passes through this process: after a Ctrl-C it is held back and printed
    without torchrun's traceback, so the log ends with the ranks' one-line messages and ours.
    """
    from reprolm.keep import manifest_link

    before = file_identity(manifest_link(output))  # the manifest Snakemake deleted, if any
    process = subprocess.Popen(list(command), env=dict(env), stderr=subprocess.PIPE, text=True)
    # Snakemake or SLURM stopping the job signals this process: pass it on to torchrun.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, frame: process.send_signal(number))
    held: list[str] = []
    interrupted = threading.Event()

    def forward() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if TORCHRUN_SIGINT.search(line):
                interrupted.set()
            if interrupted.is_set():
                held.append(line)
            else:
                sys.stderr.write(line)
                sys.stderr.flush()

    reader = threading.Thread(target=forward, daemon=True)
    reader.start()
    while True:
        try:
            returncode = process.wait()
            reader.join()
            break
        except KeyboardInterrupt:
            interrupted.set()  # torchrun got the same SIGINT: wait for it to stop the ranks
    code, line = judge_exit(returncode, output, before)
    if interrupted.is_set():
        sys.stderr.writelines(without_torchrun_report(held))
        if code != 0:
            print(
                f"interrupted: the job stopped; nothing installed (any previous artifact at "
                f"{output} is untouched); rerun to continue",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    if line:
        print(line, file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    main()
