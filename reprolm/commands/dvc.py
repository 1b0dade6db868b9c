"""``reprolm dvc``: generate dvc.yaml, init/commit/push/pull artifacts, show their DVC status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reprolm.commands import add_command, emit
from reprolm.dvc import pipeline, storage
from reprolm.dvc.failures import StorageError
from reprolm.plan import load_plan
from reprolm.tracking.config import masked_uri

ROOT = Path(".")
EXIT_FAILED_STORAGE = 2  # as bad input (reprolm.cli): the user must fix the remote or the disk


def _dvc_errors(handler):
    """A failed DVC operation exits 2 with one paragraph naming the remote (or cache), the path,
    the cause and the fix (``reprolm.dvc.failures``), never a traceback."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except StorageError as error:
            print(f"reprolm dvc {args.dvc_command}: {error}", file=sys.stderr)
            return EXIT_FAILED_STORAGE

    return wrapped


@_dvc_errors
def cmd_sync(args: argparse.Namespace) -> int:
    plan = load_plan(args.recipe)
    if args.check:
        diff = pipeline.check(plan, args.recipe, ROOT)
        if diff:
            print(diff, end="")
            print(
                f"reprolm dvc: {pipeline.DVC_YAML} is out of sync with {args.recipe}; "
                f"run `reprolm dvc sync --recipe {args.recipe}` and commit it",
                file=sys.stderr,
            )
            return 1
        emit({"in_sync": True}, args.json, f"{pipeline.DVC_YAML} is in sync with {args.recipe}")
        return 0
    changed = pipeline.sync(plan, args.recipe, ROOT)
    emit({"changed": changed}, args.json, "\n".join(f"wrote {n}" for n in changed) or "in sync")
    return 0


@_dvc_errors
def cmd_init(args: argparse.Namespace) -> int:
    url = masked_uri(storage.init(ROOT, args.url, name=args.name, local=args.local))
    emit({"remote": args.name, "url": url}, args.json, f"default remote {args.name}: {url}")
    return 0


@_dvc_errors
def cmd_commit(args: argparse.Namespace) -> int:
    plan = load_plan(args.recipe) if args.recipe else None
    result = storage.commit(ROOT, plan)
    lines = [f"committed {n}" for n in result["committed"]]
    lines += [f"unfinished {n} (no manifest yet)" for n in result["unfinished"]]
    lines += [f"untracked {d} (run reprolm dvc sync)" for d in result["untracked"]]
    emit(result, args.json, "\n".join(lines))
    return 1 if result["untracked"] else 0


@_dvc_errors
def cmd_push(args: argparse.Namespace) -> int:
    count = storage.push(ROOT, args.remote)
    emit({"pushed": count}, args.json, f"{count} file(s) pushed")
    return 0


@_dvc_errors
def cmd_pull(args: argparse.Namespace) -> int:
    recipe = args.recipe.as_posix() if args.recipe else None
    result = storage.pull(ROOT, args.remote, recipe=recipe, touch=not args.no_touch)
    lines = [f"pulled; mtimes restored on {len(result['touched'])} manifest(s)"]
    if result["metadata"]:
        lines.append("snakemake metadata recorded (snakemake --touch)")
    lines += [
        f"stale: {out} was built by other stage code than this checkout's; "
        "snakemake will not rerun it by itself (use --forcerun)"
        for out in result["stale_code"]
    ]
    emit({k: v for k, v in result.items() if k != "pulled"}, args.json, "\n".join(lines))
    return 1 if result["stale_code"] else 0


@_dvc_errors
def cmd_status(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = storage.status(ROOT, load_plan(args.recipe), args.remote)
    flag = {True: "yes", False: "no", None: "?"}
    text = "\n".join(
        f"{r['dvc_stage']:18s} tracked={flag[r['tracked']]:3s} "
        f"workspace={r['workspace'] or '-':8s} cache={flag[r['in_cache']]:3s} "
        f"remote={flag[r['in_remote']]:3s} {r['artifact']}"
        for r in rows
    )
    emit(rows, args.json, text)
    complete = all(r["tracked"] and r["in_cache"] and r["workspace"] == "clean" for r in rows)
    return 0 if complete else 1


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dvc", help="DVC record of the artifacts (dvc.yaml, cache, remote)"
    )
    sub = parser.add_subparsers(dest="dvc_command", required=True)
    p = add_command(sub, "sync", cmd_sync, "generate dvc.yaml from the job plan", recipe=True)
    p.add_argument("--check", action="store_true", help="exit 1 with a diff if out of sync")
    p = add_command(sub, "init", cmd_init, "dvc init (if needed) and set the default remote")
    p.add_argument("--url", help=f"remote URL or path (default ${storage.REMOTE_ENV} or "
                   f"{storage.DEFAULT_REMOTE_URL}, relative to the project root)")  # fmt: skip
    p.add_argument("--name", default=storage.REMOTE_NAME, help="remote name")
    p.add_argument("--local", action="store_true", help="write .dvc/config.local")
    p = add_command(sub, "commit", cmd_commit, "record finished artifacts in the DVC cache")
    p.add_argument("--recipe", type=Path, help="only this recipe's jobs (default: all of dvc.yaml)")
    p = add_command(sub, "push", cmd_push, "dvc push the recorded artifacts to the remote")
    p.add_argument("--remote", help="remote name (default: the configured default)")
    p = add_command(sub, "pull", cmd_pull, "dvc pull, then make Snakemake see the DAG as done")
    p.add_argument("--remote", help="remote name (default: the configured default)")
    p.add_argument("--recipe", type=Path, help="recipe for snakemake --touch (default: dvc.yaml's)")
    p.add_argument("--no-touch", action="store_true",
                   help="only restore mtimes; do not record Snakemake metadata")  # fmt: skip
    p = add_command(sub, "status", cmd_status, "DVC status of every job's artifact", recipe=True)
    p.add_argument("--remote", help="remote name (default: the configured default)")
