"""Audit: verify every link of an artifact's lineage, back to its source artifacts.

Per node: the manifest is readable; the payload re-hashes to the recorded per-file hashes and
digest; the fingerprint recomputed from the recorded config and the inputs' fingerprints equals
the recorded one (and the directory name); every input's recorded stage, fingerprint and digest
equal what the input's own manifest says; a release's embedded copy (``lineage/``) agrees with
the manifest on disk; DVC holds the recorded version; the MLflow run exists and agrees. What a
DVC record or an MLflow run means is judged where that knowledge lives
(``reprolm.dvc.records.judge``, ``reprolm.tracking.judge_run``); the stores are asked through
hooks looked up at call time (``reprolm.dvc.artifact_status``, ``reprolm.tracking.run_status``).

The report model (statuses, NodeReport, AuditReport, render) is in ``reprolm.audit_report``.

Findings come in three kinds. A *broken* link is evidence that something changed (a re-hashed
file differs, a fingerprint or digest disagrees, the tracking store holds the experiment but not
the run, DVC's record differs from the workspace). A *missing* payload is something the audit
could not check (an input deleted, or a release copied alone whose upstream payloads are not on
disk); its manifest is still checked from the release's bill of materials when one exists. A
*not checkable* store check (``not checked``: no MLflow store or not this one, DVC absent or its
remote unreachable, as in a fresh clone) is listed, and fails the audit only when that kind of
check is required (``REQUIRABLE``; ``reprolm audit --require mlflow,dvc``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import time
from pathlib import Path
from typing import Any

from reprolm.audit_report import (
    BROKEN,
    MISSING,
    NOT_CHECKED,
    OK,
    REQUIRABLE,
    AuditReport,
    NodeReport,
    render,
    short,
)
from reprolm.canonical import NotCanonicalError
from reprolm.dvc.records import in_dvc_repo
from reprolm.dvc.records import judge as judge_dvc_record
from reprolm.externalaudit import check_origin
from reprolm.fingerprint import fingerprint
from reprolm.hashing import MANIFEST_NAME, PayloadError, payload_digest
from reprolm.lineage import LINEAGE_DIR, Lineage, Node, build, display_path
from reprolm.manifest import verify_payload
from reprolm.rawdata import check_raw_files
from reprolm.tracking.queries import judge_run, unavailable_store

# The report model lives in reprolm.audit_report; these names stay importable from here.
__all__ = [
    "BROKEN", "MISSING", "NOT_CHECKED", "OK", "REQUIRABLE", "AuditReport", "NodeReport", "audit",
    "render",
]  # fmt: skip


def _check_manifest_and_payload(report: NodeReport) -> None:
    node, manifest = report.node, report.node.manifest
    if node.error:
        report.problems.append(f"unreadable manifest: {node.error}")
        report.check("payload", NOT_CHECKED, "manifest unreadable")
        return
    if node.directory is None:
        report.missing.append("payload not on disk (manifest checked from the release's lineage/)")
        report.check("payload", MISSING, "not on disk")
    else:
        try:
            problems = verify_payload(node.directory, manifest)
        except PayloadError as error:
            problems = [f"payload refused: {error}"]
        report.bytes_hashed = sum(
            (node.directory / rel).stat().st_size
            for rel in manifest["files"]
            if (node.directory / rel).is_file() and not (node.directory / rel).is_symlink()
        )
        report.problems += problems
        report.check("payload", BROKEN if problems else OK, f"{len(manifest['files'])} files")
    files = manifest.get("files")
    if isinstance(files, dict) and files and payload_digest(files) != manifest.get("digest"):
        report.problems.append(
            f"recorded digest {short(manifest.get('digest'))} is not the digest of the recorded "
            f"file hashes ({short(payload_digest(files))}): {MANIFEST_NAME} was edited"
        )


def _check_raw_data(report: NodeReport) -> None:
    """A source artifact: the corpus files it names, re-read (reprolm/rawdata.py)."""
    node = report.node
    if node.stage != "source" or node.directory is None:
        return
    if not (node.directory / "source.json").is_file():
        report.check("raw_data", NOT_CHECKED, "no source.json")
        return
    raw = check_raw_files(node.directory)
    report.problems += raw.problems
    report.missing += raw.missing
    report.bytes_hashed += raw.bytes_hashed
    status = BROKEN if raw.problems else MISSING if raw.missing else OK
    report.check("raw_data", status, f"{raw.files} files re-read, {len(raw.missing)} absent")


def _check_identity(report: NodeReport) -> None:
    node, manifest = report.node, report.node.manifest
    if node.error:
        return
    inputs = {
        name: record.get("fingerprint")
        for name, record in (manifest.get("inputs") or {}).items()
        if isinstance(record, dict)
    }
    where = (
        f"{node.directory.name}/{MANIFEST_NAME}"
        if node.directory
        else f"{LINEAGE_DIR}/{node.stage}-{node.fingerprint}.json"
    )
    try:
        recomputed = fingerprint(node.stage, manifest.get("config") or {}, inputs)
    except (NotCanonicalError, TypeError) as error:
        report.problems.append(f"fingerprint cannot be recomputed ({where}): {error}")
        report.check("fingerprint", BROKEN, str(error))
        return
    problems = []
    if recomputed != node.fingerprint:
        problems.append(
            f"fingerprint {recomputed} recomputed from the recorded config and input "
            f"fingerprints != recorded {node.fingerprint} ({where}: config or inputs edited)"
        )
    if node.directory is not None and node.directory.name != f"{node.label}-{node.fingerprint}":
        problems.append(
            f"directory {node.directory.name} does not match its manifest's "
            f"{node.label}-{node.fingerprint}"
        )
    report.problems += problems
    report.check("fingerprint", BROKEN if problems else OK, recomputed)


def _check_inputs(report: NodeReport, lineage: Lineage) -> None:
    problems, missing = [], []
    for name, link in sorted(report.node.links.items()):
        record = link.record
        if link.refused:
            problems.append(link.refused)
            continue
        # A link without a path is one embedded copy naming another: the node itself
        # reports its payload as not on disk, once.
        if link.target is None or (link.located == "embedded" and record.get("path")):
            where = record.get("path") or f"{record.get('stage')}-{record.get('fingerprint')}"
            missing.append(f"input {name} missing: {where}")
            if link.target is None:
                continue
        upstream = lineage.nodes[link.target]
        if upstream.error:
            continue  # reported on the upstream node itself
        for key in ("stage", "fingerprint", "digest"):
            want, have = record.get(key), upstream.manifest.get(key)
            if want != have:
                fmt = short if key == "digest" else str
                problems.append(
                    f"input {name} {key} {fmt(want)} != {upstream.stage} manifest {key} {fmt(have)}"
                )
    report.problems += problems
    report.missing += missing
    status = BROKEN if problems else MISSING if missing else OK
    report.check("inputs", status, f"{len(report.node.links)} inputs")


def _check_embedded(report: NodeReport, top: Node) -> None:
    """A release's bill of materials must hold every upstream node, equal to the disk copy."""
    node = report.node
    if not (top.directory and (top.directory / LINEAGE_DIR).is_dir()) or node is top:
        return
    copy = node.embedded
    if copy is None:
        report.problems.append(f"not in the bill of materials ({top.id}/{LINEAGE_DIR}/)")
        report.check("embedded", BROKEN, "absent")
        return
    if node.directory is None or node.error:
        report.check("embedded", OK, "manifest taken from the bill of materials")
        return
    differs = [
        key
        for key in ("fingerprint", "digest", "files", "config")
        if copy.get(key) != node.manifest.get(key)
    ]
    for name, record in (node.manifest.get("inputs") or {}).items():
        theirs = (copy.get("inputs") or {}).get(name) or {}
        if any(theirs.get(k) != record.get(k) for k in ("stage", "fingerprint", "digest")):
            differs.append(f"inputs.{name}")
    if differs:
        report.problems.append(
            f"{top.id}/{LINEAGE_DIR}/{node.stage}-{node.fingerprint}.json disagrees with the "
            f"manifest on disk on: {', '.join(differs)}"
        )
    report.check("embedded", BROKEN if differs else OK, ", ".join(differs))


def _hook(module: str, function: str) -> Any | None:
    try:
        return getattr(importlib.import_module(module), function, None)
    except ImportError:
        return None


def _interpret(result: Any) -> tuple[str, str]:
    """A hook's answer as (status, detail): bool, ``{"ok", "detail"}``, or an object with ``ok``."""
    if isinstance(result, bool):
        return (OK if result else BROKEN), ""
    if isinstance(result, dict):
        ok, detail = result.get("ok"), result.get("detail") or result.get("message") or ""
        if isinstance(result.get("problems"), list) and result["problems"]:
            detail = "; ".join(map(str, result["problems"]))
    else:
        ok, detail = getattr(result, "ok", None), getattr(result, "detail", "") or ""
    return _verdict(ok, str(detail))


def _verdict(ok: bool | None, detail: str) -> tuple[str, str]:
    """A judgement (held / broken / None: nothing to check) as the audit's status."""
    return (NOT_CHECKED if ok is None else OK if ok else BROKEN), detail


def _dvc_statuses(nodes: list[Any]) -> dict[Path, Any]:
    """DVC's record of every node on disk in one pass (one repo open), when the hook offers it;
    empty (per-node checks then) when it does not or fails."""
    batch = _hook("reprolm.dvc", "artifact_statuses")
    directories = [
        n.directory for n in nodes if n.directory is not None and not n.error
        and in_dvc_repo(n.directory)
    ]  # fmt: skip
    if batch is None or not directories:
        return {}
    try:
        return batch(directories)
    except Exception:  # fall back to asking node by node, which reports the failure per node
        return {}


def _check_dvc(report: NodeReport, known: dict[Path, Any] | None = None) -> None:
    node = report.node
    check = _hook("reprolm.dvc", "artifact_status")
    recorded = (known or {}).get(node.directory.resolve()) if node.directory else None
    if recorded is not None:
        _run_hook(report, "dvc", lambda _: recorded, node.directory, _interpret_dvc)
    elif node.directory is None or node.error:
        report.check("dvc", NOT_CHECKED, "no payload on disk")
    elif check is None:
        report.check("dvc", NOT_CHECKED, "reprolm.dvc.artifact_status unavailable")
    elif not in_dvc_repo(node.directory):
        report.check("dvc", NOT_CHECKED, "not in a DVC repository")
    else:
        _run_hook(report, "dvc", check, node.directory, _interpret_dvc)


def _check_mlflow(report: NodeReport, root: Path) -> None:
    run_id = report.node.manifest.get("mlflow_run_id")
    check = _hook("reprolm.tracking", "run_status")
    if not run_id:
        report.check("mlflow", NOT_CHECKED, "no mlflow_run_id in the manifest")
    elif check is None:
        report.check("mlflow", NOT_CHECKED, "reprolm.tracking.run_status unavailable")
    elif (why := _unavailable_store(root)) is not None:
        report.check("mlflow", NOT_CHECKED, why)
    else:
        # The embedded store lives in the working directory the pipeline ran in.
        takes_where = "where" in inspect.signature(check).parameters
        run = (lambda run_id: check(run_id, where=root)) if takes_where else check
        interpret = functools.partial(_interpret_mlflow, report.node.manifest)
        _run_hook(report, "mlflow", run, run_id, interpret)


def _unavailable_store(root: Path) -> str | None:
    """Why the embedded SQLite store cannot be asked (absent, empty: asking would create it)."""
    uri_of = _hook("reprolm.tracking", "tracking_uri")
    uri = uri_of(root) if uri_of else ""
    return unavailable_store(uri) if isinstance(uri, str) else None


def _interpret_dvc(result: Any) -> tuple[str, str]:
    """``reprolm.dvc.artifact_status``'s record, judged by ``reprolm.dvc.records.judge``."""
    if not isinstance(result, dict) or "tracked" not in result:
        return _interpret(result)
    return _verdict(*judge_dvc_record(result))


def _run_hook(
    report: NodeReport, name: str, check: Any, argument: Any, interpret: Any = None
) -> None:
    try:
        result = check(argument)
    except Exception as error:  # a failing store is a finding, not a crash of the audit
        result = {"ok": False, "detail": f"check failed: {type(error).__name__}: {error}"}
    status, detail = (interpret or _interpret)(result)
    if status == BROKEN:
        report.problems.append(f"{name}: {detail or 'check failed'}")
    report.check(name, status, detail)


def _interpret_mlflow(manifest: dict[str, Any], result: Any) -> tuple[str, str]:
    """``reprolm.tracking.run_status``'s record, judged by ``reprolm.tracking.judge_run``."""
    if not isinstance(result, dict) or "exists" not in result:
        return _interpret(result)
    return _verdict(*judge_run(manifest, result))


def audit(
    artifact_dir: Path,
    *,
    root: Path | None = None,
    target: str = "",
    require: tuple[str, ...] = (),
) -> AuditReport:
    """Build the lineage of ``artifact_dir`` and check every node once; ``require``: kinds of
    store check (``REQUIRABLE``) that must not be left unchecked."""
    unknown = sorted(set(require) - set(REQUIRABLE))
    if unknown:
        raise ValueError(f"cannot require {', '.join(unknown)}: one of {', '.join(REQUIRABLE)}")
    started = time.perf_counter()
    lineage = build(artifact_dir, root)
    top = lineage.nodes[lineage.top]
    reports, hash_seconds = [], 0.0
    dvc_known = _dvc_statuses(lineage.walk())
    for node in lineage.walk():
        path = display_path(node.directory, lineage.root) if node.directory else None
        report = NodeReport(node, path)
        before = time.perf_counter()
        _check_manifest_and_payload(report)
        _check_raw_data(report)
        hash_seconds += time.perf_counter() - before
        _check_identity(report)
        _check_inputs(report, lineage)
        check_origin(report, lineage)
        _check_embedded(report, top)
        _check_dvc(report, dvc_known)
        _check_mlflow(report, lineage.root)
        reports.append(report)
    return AuditReport(
        target or str(artifact_dir),
        lineage,
        reports,
        time.perf_counter() - started,
        hash_seconds,
        tuple(require),
    )
