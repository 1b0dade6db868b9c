"""The thin CLI every stage runs behind: ``python -m stages.<stage> ...``.

It pins threads and seeds, checks that the output directory's fingerprint matches the config
and inputs, calls the stage's ``run(config, inputs, output_dir, context)`` on an empty scratch
directory (``inputs``: ``Input`` objects, path and manifest; ``context``: a ``JobContext``, how
the job runs: rank, world size, checkpointing), hashes the payload, writes ``provenance.json``
and only then moves the artifact into place, so a failed or interrupted job never leaves a
half-written artifact and never destroys an old one (``reprolm.keep``: the manifest Snakemake
deletes of a failed job comes back from a hard link, install leftovers are cleaned).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reprolm import environment, keep, numerics, resume
from reprolm.canonical import dump_json
from reprolm.codedigest import CODE_ROOT, code_digest, code_record
from reprolm.fingerprint import fingerprint
from reprolm.hashing import MANIFEST_NAME
from reprolm.jobfaults import (
    EXIT_INTERRUPTED,
    JobInterrupted,
    interrupted_message,
    no_room,
    no_room_message,
    sigint_deferred,
)
from reprolm.manifest import ManifestError, build_manifest, read_manifest
from reprolm.recipe import RecipeError, validate_stage_config
from reprolm.teardown import leave_process_group

# The job side of the run() contract: a standard-library dataclass module, the only job code
# the runner imports (it builds the objects; see its docstring).
from stages.common.job import Input, JobContext

# Before anything loads torch, MKL or oneDNN: no import above does, and each stage's __main__
# imports this module before its stage module (reprolm.numerics; tests/unit/test_numerics.py).
# A CPU that cannot run the pinned path is refused at the job's start (execute), not here: the
# CLI imports this module too.
with contextlib.suppress(numerics.NumericsError):
    numerics.pin()


def _interrupted_while_loading(signum: int, frame: Any) -> None:
    print("interrupted: the job stopped while loading its code; nothing was written; rerun it",
          file=sys.stderr)  # fmt: skip
    raise SystemExit(EXIT_INTERRUPTED)


# ``python -m stages.<stage>`` imports this module, then its stage module (torch: seconds): a
# Ctrl-C meanwhile ends the job with one line, not an import traceback. ``main`` restores Python's
# handler (KeyboardInterrupt) before the job starts.
_MAIN_SPEC = getattr(sys.modules.get("__main__"), "__spec__", None)
if _MAIN_SPEC is not None and re.fullmatch(r"stages\.\w+\.__main__", _MAIN_SPEC.name or ""):
    signal.signal(signal.SIGINT, _interrupted_while_loading)

# run(config, inputs, output_dir, context) -> metrics (stages.common.job: Input, JobContext)
StageFn = Callable[[dict[str, Any], dict[str, Input], Path, JobContext], dict[str, Any] | None]
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "RAYON_NUM_THREADS",
)
EXIT_BAD_INPUT = 2
LOCK_FILE = "requirements.lock"
# Uncommitted code changes are saved here (relative to the working directory) by diff hash, so
# that `reprolm rebuild` can re-create a dirty tree.
DIFF_DIR = ".reprolm/diffs"


class JobError(RuntimeError):
    """The job cannot start as asked (bad config, missing input, wrong output path)."""


def _parse_args(stage: str, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m stages.{stage}", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config-json", help="the resolved stage config as a JSON object")
    source.add_argument("--config", type=Path, help="a JSON or YAML file holding the stage config")
    parser.add_argument(
        "--input", action="append", default=[], metavar="NAME=DIR", help="an input artifact"
    )
    parser.add_argument(
        "--output", type=Path, required=True, help="artifact directory <label>-<fingerprint>"
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=0, metavar="STEPS",
        help="training stages: save a resumable checkpoint every STEPS steps (0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint-keep", type=int, default=resume.MIN_KEEP, metavar="N",
        help=f"training stages: keep the last N checkpoints (at least {resume.MIN_KEEP})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.checkpoint_every < 0:
        parser.error(f"--checkpoint-every {args.checkpoint_every}: expected 0 (off) or more steps")
    if args.checkpoint_keep < resume.MIN_KEEP:
        parser.error(
            f"--checkpoint-keep {args.checkpoint_keep}: keep at least {resume.MIN_KEEP}, so that "
            "a job killed while saving a checkpoint can resume from the one before"
        )
    return args


def _load_config(args: argparse.Namespace) -> dict[str, Any]:
    if args.config_json is not None:
        try:
            return json.loads(args.config_json)
        except json.JSONDecodeError as error:
            raise JobError(f"--config-json is not valid JSON: {error}") from None
    import yaml

    try:
        return yaml.safe_load(args.config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise JobError(f"{args.config}: cannot read the stage config: {error}") from None


def _parse_inputs(pairs: list[str]) -> dict[str, Path]:
    inputs: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise JobError(f"--input {pair!r}: expected NAME=DIR")
        if name in inputs:
            raise JobError(f"--input {name}: given twice")
        inputs[name] = Path(path)
    return inputs


def pin_threads_and_seeds(threads: int, seed: int, uses_torch: bool) -> dict[str, Any]:
    """Pin thread pools and seed every global RNG; return the determinism record."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    random.seed(seed)
    record: dict[str, Any] = {"seed": seed, "threads": threads}
    try:
        import numpy

        numpy.random.seed(seed)
    except ImportError:
        pass
    # The variables above only reach BLAS/OpenMP pools created after they are set; numpy may
    # already be imported (stage modules import it at the top), so cap the live pools too.
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=threads)
    record["blas_threads"] = sorted({pool["num_threads"] for pool in threadpool_info()})
    if uses_torch:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        deterministic_algorithms(torch)
        record.update(
            torch_threads=torch.get_num_threads(),
            deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
        )
    return record


def deterministic_algorithms(torch: Any) -> None:
    """What ``torch.use_deterministic_algorithms(True, warn_only=True)`` does, without its
    ~1.8 s import of torch._inductor (and dynamo) in every job just to set one inductor flag:
    the C flag directly, inductor's through the variable its config reads when first imported
    (or on the module, when something already imported it)."""
    os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = True
    torch._C._set_deterministic_algorithms(True, warn_only=True)


def _track(manifest: dict[str, Any], payload_dir: Path) -> str | None:
    """Log the job to MLflow (never fails the job); the run id goes into the manifest."""
    try:
        from reprolm import tracking
    except ImportError:  # tracking is optional: a job never depends on it
        return None
    history_file = payload_dir / "training" / "log_history.json"
    try:
        history = json.loads(history_file.read_text()) if history_file.is_file() else None
    except (OSError, json.JSONDecodeError):
        history = None  # curves are a courtesy; the run is logged without them
    return tracking.log_job(manifest, history)


def _launch_record() -> dict[str, Any]:
    """How reprolm.launch placed a multi-process job and its DeepSpeed config (placement)."""
    record: dict[str, Any] = {}
    if os.environ.get("REPROLM_LAUNCH"):
        record["launch"] = json.loads(os.environ["REPROLM_LAUNCH"])
    if os.environ.get("REPROLM_DEEPSPEED_CONFIG"):
        path = Path(os.environ["REPROLM_DEEPSPEED_CONFIG"])
        record["deepspeed_config"] = json.loads(path.read_text(encoding="utf-8"))
    return record


def _install(scratch: Path, output: Path) -> None:
    """Move a finished scratch directory to ``output``, replacing what was there, and keep a
    hard link of its manifest outside Snakemake's declared outputs (``reprolm.keep``)."""
    old = output.with_name(f".{output.name}.old-{os.getpid()}")
    if output.exists():
        output.rename(old)
    scratch.rename(output)
    keep.keep_manifest(output)
    shutil.rmtree(old, ignore_errors=True)


def _read_inputs(inputs: dict[str, Path]) -> tuple[dict[str, dict[str, str]], dict[str, Input]]:
    """The manifest's record of each input and the ``Input`` objects the stage receives."""
    records: dict[str, dict[str, str]] = {}
    objects: dict[str, Input] = {}
    for name, path in sorted(inputs.items()):
        upstream = read_manifest(path)
        records[name] = {
            "path": os.path.relpath(path),
            "stage": upstream["stage"],
            "fingerprint": upstream["fingerprint"],
            "digest": upstream["digest"],
        }
        objects[name] = Input(Path(path), upstream)
    return records, objects


def _check_output(
    stage: str, config: dict[str, Any], records: dict[str, dict[str, str]], output: Path
) -> tuple[str, str]:
    """``(fingerprint, label)``; the output directory must be named ``<label>-<fingerprint>``."""
    job_fingerprint = fingerprint(
        stage, config, {name: rec["fingerprint"] for name, rec in records.items()}
    )
    label, _, named_fingerprint = output.name.rpartition("-")
    if named_fingerprint != job_fingerprint or not label:
        raise JobError(
            f"--output {output}: this config and these inputs have fingerprint {job_fingerprint}; "
            f"name the output directory <label>-{job_fingerprint}"
        )
    return job_fingerprint, label


def _make_scratch(output: Path) -> Path:
    """An empty scratch directory beside ``output`` (leftovers of killed attempts removed)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    keep.clean_leftovers(output)
    scratch = output.with_name(f".{output.name}.partial-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    return scratch


def job_context(
    stage: str, job_fingerprint: str, checkpoints: Path | None, every: int, keep: int
) -> JobContext:
    """The stage's ``JobContext``: checkpointing from the runner, placement from the launcher
    (torchrun's ``RANK``/``WORLD_SIZE``, ``reprolm.launch``'s DeepSpeed file and micro batch)."""
    deepspeed = os.environ.get("REPROLM_DEEPSPEED_CONFIG")
    launch = json.loads(os.environ.get("REPROLM_LAUNCH") or "{}")
    return JobContext(
        stage=stage,
        fingerprint=job_fingerprint,
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        checkpoint_dir=checkpoints,
        checkpoint_every=every if checkpoints is not None else 0,
        checkpoint_keep=keep,
        deepspeed_config=Path(deepspeed) if deepspeed else None,
        micro_batch_size=launch.get("micro_batch_size") or None,
    )


def _execution(
    stage: str, argv: list[str] | None, started: datetime, clocks: tuple[float, float],
    context: JobContext,
) -> dict[str, Any]:  # fmt: skip
    """The manifest's ``execution`` block of a job that has just finished."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    wall0, cpu0 = clocks
    return {
        # Process start (interpreter, imports, torch, reading inputs) to the job's clock.
        "startup_seconds": _startup_seconds(started),
        "rule": stage,
        "host": socket.gethostname(),
        "argv": argv if argv is not None else sys.argv,
        "started": started.isoformat(timespec="seconds"),
        "ended": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - wall0, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "resumed_from_step": context.resumed_step,
        **_launch_record(),
        "exit_status": 0,
    }


def _startup_seconds(started: datetime) -> float | None:
    """Seconds from this process's start (reprolm.launch execs into it: the launcher's start)
    to ``started``; None where psutil cannot tell."""
    try:
        import psutil

        created = psutil.Process().create_time()
    except Exception:  # a measurement, never a reason to fail a job
        return None
    return round(max(0.0, started.timestamp() - created), 3)


def _write_manifest(
    stage: str, label: str, job_fingerprint: str, config: dict[str, Any],
    records: dict[str, dict[str, str]], scratch: Path, execution: dict[str, Any],
    determinism: dict[str, Any], reproducibility: dict[str, Any], metrics: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Build the manifest of the payload in ``scratch``, log it, write it there; return it."""
    begun = time.perf_counter()
    if (scratch / MANIFEST_NAME).exists():
        raise JobError(f"stage {stage} wrote {MANIFEST_NAME} itself; only the runner may")
    manifest = build_manifest(
        stage=stage,
        label=label,
        fingerprint=job_fingerprint,
        config=config,
        inputs=records,
        payload_dir=scratch,
        code={**environment.git_state(CODE_ROOT, diff_dir=Path(DIFF_DIR)), **code_record(stage)},
        environment={
            **environment.capture(config["threads"], lock_file=CODE_ROOT / LOCK_FILE),
            "determinism": determinism,
        },
        execution=execution,
        reproducibility=reproducibility,
        metrics=metrics,
    )
    manifest["mlflow_run_id"] = _track(manifest, scratch)
    # After the job's clock: hashing the payload, recording code and environment, tracking.
    execution["manifest_seconds"] = round(time.perf_counter() - begun, 3)
    (scratch / MANIFEST_NAME).write_text(dump_json(manifest), encoding="utf-8")
    return manifest


def execute(
    stage: str,
    run: StageFn,
    config: dict[str, Any],
    inputs: dict[str, Path],
    output: Path,
    *,
    reproducibility: dict[str, Any],
    uses_torch: bool = True,
    argv: list[str] | None = None,
    checkpoint_every: int = 0,
    checkpoint_keep: int = resume.MIN_KEEP,
) -> dict[str, Any]:
    """Run one job end to end and return its manifest ({} on a torchrun rank other than 0).

    Training stages save resumable checkpoints every ``checkpoint_every`` steps into a directory
    that outlives a killed job and is removed after success (``reprolm.resume``).
    """
    # Snakemake deleted the declared provenance.json before starting this job: put it back, so
    # that the previous artifact stays whole whatever this attempt does.
    keep.restore_manifest(output)
    numerics.check()  # NumericsError: this CPU cannot run the pinned code path
    config = validate_stage_config(stage, config)
    records, stage_inputs = _read_inputs(inputs)
    job_fingerprint, label = _check_output(stage, config, records, output)
    determinism = pin_threads_and_seeds(config["threads"], config["seed"], uses_torch)
    scratch = _make_scratch(output)
    started, clocks = datetime.now(UTC), (time.perf_counter(), time.process_time())
    installed = False
    try:
        with resume.checkpointing(
            output, job_fingerprint, code_digest(stage), checkpoint_every, checkpoint_keep
        ) as checkpoints:
            context = job_context(
                stage, job_fingerprint, checkpoints, checkpoint_every, checkpoint_keep
            )
            metrics = run(config, stage_inputs, scratch, context) or {}
        if not context.is_main:
            # A torchrun worker other than rank 0: rank 0 alone writes and installs the artifact.
            shutil.rmtree(scratch, ignore_errors=True)
            return {}
        execution = _execution(stage, argv, started, clocks, context)
        manifest = _write_manifest(
            stage, label, job_fingerprint, config, records, scratch, execution,
            determinism, reproducibility, metrics,
        )  # fmt: skip
        with sigint_deferred():  # a Ctrl-C now lands after the install, never between renames
            _install(scratch, output)
            installed = True
            if checkpoints is not None:  # done: nothing left to resume
                shutil.rmtree(checkpoints, ignore_errors=True)
    except KeyboardInterrupt:
        shutil.rmtree(scratch, ignore_errors=True)
        raise JobInterrupted(installed) from None
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        _abandon_live_run()
        raise
    return manifest


def _abandon_live_run() -> None:
    """Mark the failed job's live MLflow run FAILED (only if it opened one; never raises)."""
    live = sys.modules.get("reprolm.tracking.live")
    if live is not None:
        live.abandon()


def main(
    stage: str,
    run: StageFn,
    *,
    reproducibility: dict[str, Any] | None = None,
    uses_torch: bool = True,
    argv: list[str] | None = None,
    teardown: bool = False,
) -> None:
    """Entry point of ``python -m stages.<stage>``; exits 2 on bad input (or a CPU that cannot run
    the pinned numerics, reprolm.numerics), 1 on a failed job (a full disk: one paragraph naming
    the path and the free space, no traceback), 130 on Ctrl-C (one line, no traceback), and 0 when
    done without the interpreter's teardown (``exit_without_teardown``) unless ``teardown``: then
    it returns to the caller (a script that runs more code after the job, as tests do).

    The manifest's reproducibility level is the stage table's, unless ``reproducibility`` is given.
    """
    from reprolm.stagetable import reproducibility as declared

    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = _parse_args(stage, argv)
    try:
        manifest = execute(
            stage,
            run,
            _load_config(args),
            _parse_inputs(args.input),
            args.output,
            reproducibility=reproducibility or declared(stage),
            uses_torch=uses_torch,
            argv=argv,
            checkpoint_every=args.checkpoint_every,
            checkpoint_keep=args.checkpoint_keep,
        )
    except (JobError, RecipeError, ManifestError, numerics.NumericsError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt as error:
        installed = isinstance(error, JobInterrupted) and error.installed
        checkpoints = resume.checkpoint_dir(args.output).is_dir()
        print(interrupted_message(stage, args.output, installed, checkpoints), file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:
        if (room := no_room(error)) is not None:  # a full disk is not a bug: no traceback
            scratch = args.output.with_name(f".{args.output.name}.partial-{os.getpid()}")
            print(no_room_message(stage, *room, args.output, scratch), file=sys.stderr)
            sys.exit(1)
        traceback.print_exc()
        print(f"error: stage {stage} failed; nothing was written to {args.output}", file=sys.stderr)
        sys.exit(1)
    # Every rank of a multi-process job: wait for rank 0's install, then leave the process group
    # before exiting (an abort at interpreter exit would fail a finished job; reprolm.teardown).
    leave_process_group()
    if manifest:  # a torchrun worker other than rank 0 wrote nothing
        summary = ", ".join(f"{k}={v:.4g}" for k, v in manifest["metrics"].items() if _is_number(v))
        print(f"{stage}: {args.output} digest {manifest['digest'][:16]} {summary}".rstrip())
    if not teardown:
        exit_without_teardown()


def exit_without_teardown() -> None:
    """Exit 0 once the job is done (artifact installed, or nothing to install on this rank):
    the exit handlers run (logging, MLflow, tempfile finalizers), the interpreter's teardown of
    its modules does not: ~2 s for a process that loaded torch, transformers and lm-eval
    (measured on the dev machine), during which nothing is written."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
