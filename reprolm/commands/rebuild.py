"""``reprolm rebuild``: re-run the job that made an artifact and compare the result."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reprolm.commands import add_command, emit
from reprolm.rebuild import RebuildError, rebuild


def cmd_rebuild(args: argparse.Namespace) -> int:
    try:
        result = rebuild(
            args.artifact, scratch=args.scratch, keep=args.keep, as_recorded=args.as_recorded
        )
    except RebuildError as error:
        if args.json:
            emit({"artifact": str(args.artifact), "ok": False, "error": str(error)}, True, "")
        print(f"reprolm rebuild: refused: {error}", file=sys.stderr)
        return 2
    if result.tampered:
        verdict = (
            "TAMPERED: the artifact on disk does not match its manifest ("
            + "; ".join(result.tamper_report)
            + "): restore it (`dvc pull`, or rerun its job) before trusting a comparison"
        )
    elif result.ok and not result.differing_files:
        verdict = f"bit-identical: digest {result.rebuilt_digest[:16]}"
    elif result.ok:
        verdict = f"within the declared {result.level} bounds"
    else:
        verdict = f"DIFFERS ({result.level}): " + ", ".join(result.differing_files)
    text = (
        f"{result.stage} {args.artifact}\n  code: {result.source}\n"
        f"  original {result.original_digest[:16]}  rebuilt {result.rebuilt_digest[:16]}\n"
        f"  {verdict}"
    )
    placement = result.placement
    if placement.get("note"):
        hint = "" if args.as_recorded else " (pass --as-recorded)"
        text += f"\n  placement: {placement['note']}{hint}"
    elif args.as_recorded:
        text += f"\n  placement: as recorded, {placement['summary']}"
    emit(result.to_json(), args.json, text)
    return 0 if result.ok or not args.verify else 1


def register(commands: Any) -> None:
    sub = add_command(commands, "rebuild", cmd_rebuild, "re-run the job that made an artifact")
    sub.add_argument("artifact", type=Path)
    sub.add_argument("--verify", action="store_true", help="exit 1 unless the result matches")
    sub.add_argument("--scratch", type=Path, help="parent of the scratch directory")
    sub.add_argument("--keep", action="store_true", help="keep the scratch directory")
    sub.add_argument(
        "--as-recorded",
        action="store_true",
        help="run with the recorded placement (launcher, processes, nodes, DeepSpeed spec, "
        "device, container image by digest); exit 2 when this machine cannot",
    )
