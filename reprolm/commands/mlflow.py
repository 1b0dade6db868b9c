"""MLflow commands: ``mlflow sync`` replays spooled events, ``mlflow runs`` lists the latest
workflow invocation's runs. The store is ``MLFLOW_TRACKING_URI`` or the embedded SQLite store
of the working directory (see ``reprolm.tracking``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reprolm import tracking
from reprolm.commands import add_command, emit


def cmd_sync(args: argparse.Namespace) -> int:
    result = tracking.sync(spool_path=args.spool)
    result["tracking_uri"] = tracking.masked_uri(tracking.tracking_uri())
    lines = [f"replayed {len(result['replayed'])} events into {result['tracking_uri']}"]
    lines += [f"failed: {item['file']}: {item['error']}" for item in result["failed"]]
    if not result["reachable"]:
        lines.append(
            f"stopped: {result.get('error')}; {result['remaining']} events stay spooled "
            "(run `reprolm mlflow sync` again once the server is up)"
        )
    emit(result, args.json, "\n".join(lines))
    return 0 if result["remaining"] == 0 else 1


def cmd_runs(args: argparse.Namespace) -> int:
    try:
        latest = tracking.latest_runs()
    except tracking.Unreachable as error:
        emit({"error": str(error)}, args.json, f"reprolm: {error}")
        return 1
    latest["tracking_uri"] = tracking.masked_uri(tracking.tracking_uri())
    latest["spooled"] = len(tracking.spooled())
    parent = latest["parent"]
    if parent is None:
        text = f"no workflow runs in {latest['tracking_uri']}"
    else:
        text = "\n".join(
            [f"workflow {parent['run_id']} {parent['status']} recipe {parent['recipe']}"]
            + [
                f"  {r['run_id']}  {r['status']:9s} {r['stage'] or '?':9s} "
                f"{r['label']}-{r['fingerprint']}  {(r['digest'] or '')[:16]}"
                for r in latest["runs"]
            ]
        )
    if latest["spooled"]:
        text += f"\n{latest['spooled']} events waiting in the spool (reprolm mlflow sync)"
    emit(latest, args.json, text)
    return 0


def register(commands: Any) -> None:
    family = commands.add_parser("mlflow", help="MLflow lineage: replay the spool, list runs")
    sub = family.add_subparsers(dest="mlflow_command", required=True)
    sync = add_command(sub, "sync", cmd_sync, "replay spooled tracking events, then remove them")
    sync.add_argument(
        "--spool", type=Path, default=None, help="spool directory (default .reprolm/mlflow-spool)"
    )
    add_command(sub, "runs", cmd_runs, "runs of the latest workflow invocation")
