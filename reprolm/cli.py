"""The ``reprolm`` command line: inspect plans and artifacts.

Exit codes: 0 ok, 1 a check failed (e.g. a payload does not match its manifest), 2 bad input.
Every read command takes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reprolm.manifest import ManifestError, read_manifest, verify_payload
from reprolm.plan import load_plan
from reprolm.recipe import RecipeError
from reprolm.report import summary_table

DEFAULT_RECIPE = Path("config/tiny.yaml")


def _emit(value: Any, as_json: bool, text: str) -> None:
    print(json.dumps(value, indent=2, sort_keys=True) if as_json else text)


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
        }
        for job in plan.jobs.values()
    ]
    text = "\n".join(
        f"{'done' if j['done'] else 'todo'}  {j['stage']:9s} {j['artifact']}" for j in jobs
    )
    _emit(jobs, args.json, text)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    manifest = read_manifest(args.artifact)
    if args.json:
        _emit(manifest, True, "")
        return 0
    code = manifest["code"]
    lines = [
        f"stage        {manifest['stage']} ({manifest.get('label')})",
        f"fingerprint  {manifest['fingerprint']}",
        f"digest       {manifest['digest_algorithm']}:{manifest['digest']}",
        f"files        {len(manifest['files'])}",
        f"code         commit {code.get('commit')} dirty {code.get('dirty')}",
        f"reproducible {manifest['reproducibility'].get('level')}",
    ]
    lines += [
        f"input        {name}: {rec['path']} ({rec['digest'][:16]})"
        for name, rec in manifest["inputs"].items()
    ]
    lines += [f"metric       {k} = {v}" for k, v in sorted(manifest["metrics"].items())]
    print("\n".join(lines))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    problems = verify_payload(args.artifact)
    _emit(
        {"artifact": str(args.artifact), "ok": not problems, "problems": problems},
        args.json,
        "\n".join(problems) if problems else f"ok: {args.artifact} matches its manifest",
    )
    return 1 if problems else 0


def cmd_digests(args: argparse.Namespace) -> int:
    plan = load_plan(args.recipe)
    digests = {}
    for job in plan.jobs.values():
        try:
            digests[job.key] = read_manifest(Path(job.artifact_dir))["digest"]
        except ManifestError:
            digests[job.key] = None
    text = "\n".join(f"{(d or 'missing')[:32]:32s}  {key}" for key, d in digests.items())
    _emit(digests, args.json, text)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    print(summary_table(load_plan(args.recipe)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprolm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help_text: str, recipe: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        if recipe:
            sub.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="recipe YAML")
        return sub

    add("plan", cmd_plan, "list the recipe's jobs, fingerprints and artifact paths", True)
    add("digests", cmd_digests, "the payload digest of every job of a recipe", True)
    add("summary", cmd_summary, "eval scores per checkpoint and training signals", True)
    show = add("show", cmd_show, "show an artifact's provenance manifest")
    show.add_argument("artifact", type=Path)
    verify = add("verify", cmd_verify, "re-hash an artifact's payload against its manifest")
    verify.add_argument("artifact", type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (RecipeError, ManifestError) as error:
        print(f"reprolm: {error}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
