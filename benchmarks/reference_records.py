"""Per-job reference records of a recipe's run on the machine that runs CI, and the comparison
of any other machine's run against them.

``benchmarks/results/<recipe>-reference.json`` (committed; default recipe: tiny) holds, per job
of the recipe: stage, label, fingerprint, code digest, payload digest, its inputs' digests,
reproducibility level, numerics pin (pinned ISA, torch's CPU capability) and CPU model; plus the
machine (CPU model, ISA flags, cores), the numerics record and the package versions. With the
pinned numerics (reprolm.numerics) every bitwise job should give the same payload digest on any
x86-64 machine with AVX2.

    python benchmarks/reference_records.py write            # run the tiny recipe, write the file
    python benchmarks/reference_records.py write --workdir DIR    # from a finished run in DIR
    python benchmarks/reference_records.py compare [--workdir DIR]  # this machine's run (default .)
    python benchmarks/reference_records.py check-fresh      # exit 1 if a stage's code moved on

``compare`` says per job: ``same``; ``differs`` (payload digest differs although fingerprint,
code digest and input digests are equal: a real mismatch, exit 1); ``code changed`` (the stage's
code digest differs: the reference is stale for that stage, refresh it); ``fingerprint changed``
(another config); ``inputs differ`` (an upstream payload differs, see that job);
``same content, other run records`` (a release: equal but for its embedded upstream manifests,
``lineage/``, which carry each run's times and host); ``numerics differ`` (one side ran
REPROLM_NUMERICS=native); ``differs within its declared
level`` (a stage that declares a tolerance, not bitwise); ``missing`` (no finished artifact
here) and ``not in reference``. ``check-fresh`` is what tests/unit/test_reference_records.py
runs on the committed file: a commit that changes a stage's code (or moves a fingerprint of the
recipe) must refresh the reference with ``write`` on the machine that runs CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reprolm.codedigest import code_digest
from reprolm.hashing import payload_digest
from reprolm.manifest import ManifestError, read_manifest
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_RECIPE = ROOT / "config" / "tiny.yaml"
SCHEMA = 1
SAME, DIFFERS, CODE, FINGERPRINT, INPUTS = (
    "same", "differs", "code changed", "fingerprint changed", "inputs differ",
)  # fmt: skip
NUMERICS, TOLERATED, MISSING, UNREFERENCED = (
    "numerics differ", "differs within its declared level", "missing", "not in reference",
)  # fmt: skip
RECORDS = "same content, other run records"
# A release embeds its upstream manifests (lineage/: the bill of materials), and with them each
# run's times, host and environment: two independent runs never share those bytes, a rebuild of
# one release does. The content digest leaves them out.
RUN_RECORDS = ("lineage/",)


def content_digest(manifest: dict[str, Any]) -> str:
    """The payload digest over every file but the embedded run records (``RUN_RECORDS``)."""
    files = manifest.get("files") or {}
    kept = {rel: record for rel, record in files.items() if not rel.startswith(RUN_RECORDS)}
    return manifest["digest"] if len(kept) == len(files) else payload_digest(kept)


def reference_path(recipe: Path) -> Path:
    return RESULTS / f"{recipe.stem}-reference.json"


def refresh_command(recipe: Path) -> str:
    """The exact command that rewrites the reference of ``recipe`` (run at the repository root)."""
    recipe_arg = "" if recipe.resolve() == DEFAULT_RECIPE else f" --recipe {_relative(recipe)}"
    return f"python benchmarks/reference_records.py write{recipe_arg}"


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def job_record(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the reference keeps of one job's manifest."""
    environment = manifest.get("environment", {})
    numerics = environment.get("numerics", {})
    return {
        "stage": manifest["stage"],
        "label": manifest.get("label"),
        "fingerprint": manifest["fingerprint"],
        "code_digest": manifest.get("code", {}).get("code_digest"),
        "digest": manifest["digest"],
        "content_digest": content_digest(manifest),
        "inputs": {name: i.get("digest") for name, i in sorted(manifest.get("inputs", {}).items())},
        "reproducibility": manifest.get("reproducibility", {}),
        "numerics_pinned": numerics.get("pinned"),
        "pinned_isa": numerics.get("pinned_isa"),
        "torch_cpu_capability": numerics.get("torch_cpu_capability"),
        "cpu_model": environment.get("cpu_model"),
    }


def read_run(recipe: Path, workdir: Path) -> dict[str, dict[str, Any] | None]:
    """The manifests of a finished run of ``recipe`` in ``workdir``, by job key (absent: None)."""
    manifests: dict[str, dict[str, Any] | None] = {}
    for job in load_plan(recipe).jobs.values():
        try:
            manifests[job.key] = read_manifest(workdir / job.artifact_dir)
        except ManifestError:
            manifests[job.key] = None
    return manifests


def _representative(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """A manifest of a job that loaded torch (its numerics block is complete), else the first."""
    with_torch = [m for m in manifests if "torch_cpu_capability" in m["environment"]["numerics"]]
    return (with_torch or manifests)[0]


def build_reference(recipe: Path, workdir: Path) -> dict[str, Any]:
    """The reference document of a finished run (refuses an incomplete run)."""
    manifests = read_run(recipe, workdir)
    missing = [key for key, m in manifests.items() if m is None]
    if missing:
        sys.exit(f"{workdir}: no finished artifact for {', '.join(missing)}; run the recipe first")
    found = [m for m in manifests.values() if m is not None]
    sample = _representative(found)
    environment, code = sample["environment"], sample.get("code", {})
    numerics = dict(environment["numerics"])
    flags = numerics.pop("cpu_flags", {})
    numerics.pop("cpu_model", None)
    return {
        "benchmark": "reference_records",
        "schema": SCHEMA,
        "recipe": _relative(recipe),
        "written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "refresh": refresh_command(recipe),
        "code": {"commit": code.get("commit"), "dirty": code.get("dirty")},
        "machine": {
            "cpu_model": environment.get("cpu_model"),
            "cpu_count": environment.get("cpu_count"),
            "machine": environment.get("machine"),
            "platform": environment.get("platform"),
            "python": environment.get("python"),
            "isa_flags": " ".join(flag for flag, have in flags.items() if have),
            "cpu_flags": flags,
        },
        "numerics": numerics,
        "packages": environment.get("packages", {}),
        "lock_file_hash": environment.get("lock_file_hash"),
        "jobs": {key: job_record(m) for key, m in manifests.items() if m is not None},
    }


def compare_job(ref: dict[str, Any] | None, here: dict[str, Any] | None) -> tuple[str, str]:
    """Status and explanation of one job: this machine's record against the reference's."""
    if here is None:
        return MISSING, "no finished artifact here (run the recipe in this working directory)"
    if ref is None:
        return UNREFERENCED, "planned here but not in the reference: refresh the reference"
    if here["digest"] == ref["digest"]:
        return SAME, here["digest"][:16]
    if here["code_digest"] != ref["code_digest"]:
        return CODE, "the stage's code differs from the reference's: the reference is stale here"
    if here["fingerprint"] != ref["fingerprint"]:
        return FINGERPRINT, f"{ref['fingerprint']} -> {here['fingerprint']} (another config)"
    if here["inputs"] != ref["inputs"]:
        names = sorted(n for n in set(here["inputs"]) | set(ref["inputs"]) if
                       here["inputs"].get(n) != ref["inputs"].get(n))  # fmt: skip
        return INPUTS, f"upstream payload differs: {', '.join(names)} (see those jobs)"
    if not (here["numerics_pinned"] and ref["numerics_pinned"]) or (
        here["pinned_isa"] != ref["pinned_isa"]
    ):
        return NUMERICS, (
            f"pinned ISA {ref['pinned_isa']} in the reference, {here['pinned_isa']} here "
            "(REPROLM_NUMERICS=native: not expected to match)"
        )
    if here.get("content_digest") and here["content_digest"] == ref.get("content_digest"):
        return RECORDS, "equal but for the embedded upstream manifests (lineage/: times, hosts)"
    level = here.get("reproducibility", {}).get("level")
    if level != "bitwise":
        return TOLERATED, f"declared level {level!r}: bytes are not promised"
    return DIFFERS, f"payload {ref['digest'][:16]} in the reference, {here['digest'][:16]} here"


def compare(reference: dict[str, Any], recipe: Path, workdir: Path) -> dict[str, Any]:
    """Per job status of the run in ``workdir`` against ``reference``."""
    manifests = read_run(recipe, workdir)
    here = {key: job_record(m) if m else None for key, m in manifests.items()}
    keys = list(reference["jobs"]) + [k for k in here if k not in reference["jobs"]]
    jobs = {}
    for key in keys:
        status, detail = compare_job(reference["jobs"].get(key), here.get(key))
        record = here.get(key) or {}
        jobs[key] = {"status": status, "detail": detail, "cpu_model": record.get("cpu_model")}
    of = {status: [key for key, job in jobs.items() if job["status"] == status] for status in
          (DIFFERS, CODE)}  # fmt: skip
    made = {"recipe": reference["recipe"], "commit": reference["code"]["commit"]}
    return {
        "reference": {**made, "machine": reference["machine"]["cpu_model"]},
        "jobs": jobs,
        "mismatches": of[DIFFERS],
        "stale_stages": sorted({key.split("/")[0] for key in of[CODE]}),
    }


def stale(reference: dict[str, Any], recipe: Path) -> list[str]:
    """Why the reference no longer describes this tree's recipe (empty: fresh)."""
    plan = load_plan(recipe)
    problems = []
    for key, record in reference["jobs"].items():
        stage = record["stage"]
        if (now := code_digest(stage)) != record["code_digest"]:
            problems.append(f"{key}: code digest {record['code_digest'][:16]} -> {now[:16]}")
        job = plan.jobs.get(key)
        if job is None:
            problems.append(f"{key}: no longer planned by {reference['recipe']}")
        elif job.fingerprint != record["fingerprint"]:
            problems.append(f"{key}: fingerprint {record['fingerprint']} -> {job.fingerprint}")
    problems += [f"{key}: planned, not in the reference" for key in plan.jobs
                 if key not in reference["jobs"]]  # fmt: skip
    return problems


def stale_message(path: Path, problems: list[str], recipe: Path) -> str:
    return (
        f"{_relative(path)} is stale: the stage code or the recipe changed since it was "
        "written:\n  " + "\n  ".join(problems) + "\nRefresh it on the machine that runs CI "
        f"(tiny: 5-20 min on 2 cores) and commit it:\n  {refresh_command(recipe)}"
    )


def run_recipe(recipe: Path, workdir: Path, cores: int) -> float:
    """Run the recipe's whole workflow in ``workdir`` (benchmarks/workflow_stages.py)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from workflow_stages import run_workflow

    return run_workflow(recipe, workdir, cores)


def _write(args: argparse.Namespace) -> None:
    output = args.reference or reference_path(args.recipe)
    workdir, scratch = args.workdir, None
    if workdir is None:
        scratch = Path(tempfile.mkdtemp(prefix="reprolm-reference-"))
        workdir = scratch / "run"
        started = time.perf_counter()
        run_recipe(args.recipe, workdir, args.cores)
        print(f"ran {args.recipe.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    try:
        reference = build_reference(args.recipe, workdir)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(reference['jobs'])} jobs on {reference['machine']['cpu_model']} -> {output}")


def load_reference(path: Path, recipe: Path) -> dict[str, Any]:
    """The committed reference (exits with the command that writes it when absent)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        sys.exit(f"{_relative(path)}: no reference; write it with: {refresh_command(recipe)}")


def _compare(args: argparse.Namespace) -> int:
    path = args.reference or reference_path(args.recipe)
    result = compare(load_reference(path, args.recipe), args.recipe, args.workdir)
    if args.json:
        print(json.dumps(result, indent=1, sort_keys=True))
    else:
        width = max(map(len, result["jobs"]))
        for key, job in result["jobs"].items():
            print(f"{key:{width}s}  {job['status']:20s}  {job['detail']}")
        print(f"reference: {result['reference']['machine']} at {result['reference']['commit']}")
        if result["stale_stages"]:
            print(f"stale for {', '.join(result['stale_stages'])}: {refresh_command(args.recipe)}")
    if result["mismatches"]:
        print(f"mismatch: {', '.join(result['mismatches'])}", file=sys.stderr)
        return 1
    return 0


def _check_fresh(args: argparse.Namespace) -> int:
    path = args.reference or reference_path(args.recipe)
    problems = stale(load_reference(path, args.recipe), args.recipe)
    if problems:
        print(stale_message(path, problems, args.recipe), file=sys.stderr)
        return 1
    print(f"{_relative(path)}: fresh")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("write", "compare", "check-fresh"))
    parser.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE)
    parser.add_argument(
        "--workdir", type=Path, help="a finished run's working directory (compare: default .)"
    )
    parser.add_argument("--reference", type=Path, help="default results/<recipe>-reference.json")
    parser.add_argument("--cores", type=int, default=int(os.environ.get("CORES", "2")))
    parser.add_argument("--json", action="store_true", help="compare: print JSON")
    args = parser.parse_args(argv)
    if args.mode == "write":
        _write(args)
        return 0
    if args.mode == "compare":
        args.workdir = args.workdir or Path.cwd()
        return _compare(args)
    return _check_fresh(args)


if __name__ == "__main__":
    sys.exit(main())
