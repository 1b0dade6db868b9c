"""Read-only commands over plans and artifacts: plan, digests, summary, show, verify."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reprolm.commands import add_command, emit
from reprolm.manifest import ManifestError, read_manifest, verify_payload
from reprolm.plan import load_plan
from reprolm.report import summary_table


def cmd_plan(args: argparse.Namespace) -> int:
    plan = load_plan(args.recipe)
    jobs = [
        {
            "stage": job.stage,
            "label": job.label,
            "fingerprint": job.fingerprint,
            "artifact": job.artifact_dir,
            "done": Path(job.manifest).is_file(),
            "inputs": plan.input_dirs(job),
            "config": job.config,
        }
        for job in plan.jobs.values()
    ]
    text = "\n".join(
        f"{'done' if j['done'] else 'todo'}  {j['stage']:9s} {j['artifact']}" for j in jobs
    )
    emit(jobs, args.json, text)
    return 0


def cmd_digests(args: argparse.Namespace) -> int:
    plan = load_plan(args.recipe)
    digests: dict[str, Any] = {}
    for job in plan.jobs.values():
        try:
            digests[job.key] = read_manifest(Path(job.artifact_dir))["digest"]
        except ManifestError:
            digests[job.key] = None
    text = "\n".join(f"{(d or 'missing')[:32]:32s}  {key}" for key, d in digests.items())
    emit(digests, args.json, text)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    print(summary_table(load_plan(args.recipe)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.artifact)
    if args.json:
        emit(manifest, True, "")
        return 0
    code = manifest.get("code") or {}
    lines = [
        f"stage        {manifest['stage']} ({manifest.get('label')})",
        f"fingerprint  {manifest['fingerprint']}",
        f"digest       {manifest.get('digest_algorithm', '?')}:{manifest['digest']}",
        f"files        {len(manifest['files'])}",
        f"code         commit {code.get('commit')} dirty {code.get('dirty')}",
        f"reproducible {(manifest.get('reproducibility') or {}).get('level')}",
    ]
    lines += [
        f"input        {name}: {rec.get('path')} ({str(rec.get('digest'))[:16]})"
        for name, rec in (manifest.get("inputs") or {}).items()
    ]
    metrics = manifest.get("metrics") or {}
    lines += [f"metric       {k} = {v}" for k, v in sorted(metrics.items())]
    print("\n".join(lines))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    problems = verify_payload(args.artifact)
    emit(
        {"artifact": str(args.artifact), "ok": not problems, "problems": problems},
        args.json,
        "\n".join(problems) if problems else f"ok: {args.artifact} matches its manifest",
    )
    return 1 if problems else 0


def register(commands: Any) -> None:
    add_command(commands, "plan", cmd_plan, "the recipe's jobs, fingerprints, paths", recipe=True)
    add_command(commands, "digests", cmd_digests, "every job's payload digest", recipe=True)
    add_command(commands, "summary", cmd_summary, "eval scores and training signals", recipe=True)
    show = add_command(commands, "show", cmd_show, "an artifact's provenance manifest")
    show.add_argument("artifact", type=Path)
    verify = add_command(commands, "verify", cmd_verify, "re-hash a payload against its manifest")
    verify.add_argument("artifact", type=Path)
