"""Which finished artifacts the checkout would not make as they are: rerun decisions on content.

Snakemake decides by modification times and by its own records (``.snakemake/metadata``: params,
code). A clone whose artifacts came from a plain ``dvc pull`` has neither: its files carry the
times of the checkout, in no particular order, and it has no records. Here the decision is made
on content instead. An artifact's path already encodes its config and its inputs' fingerprints,
so a finished artifact is current unless its manifest records

* job code other than the checkout's (``code.code_digest``, ``reprolm.codedigest``), or
* an input payload other than the one now at that input's path (``inputs.<name>.digest``).

Snakemake still reruns a job whose input file is newer than its output (whatever its rerun
triggers), and an input job that reruns reruns its dependents. So before the DAG is built the
workflow (``check_artifact_times`` in workflow/rules/common.smk) names the stale artifacts and
gives each current one (by content) a modification time no older than its inputs' (``align``):
Snakemake's time test then agrees with the content. Where Snakemake ran the jobs, its records
(the code digest is a param) rerun stale ones; a clone without records is told ``--forcerun``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from reprolm.codedigest import CODE_ROOT, CODE_SCOPE, code_digest
from reprolm.plan import Plan


def _read(path: Path) -> dict | None:
    """The manifest at ``path``, or None when absent or unreadable (Snakemake's to handle)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def stale_artifacts(plan: Plan, workdir: Path = Path("."), code_root: Path = CODE_ROOT) -> dict:
    """Manifest path -> why, for each planned job whose finished artifact is not current."""
    digests: dict[str, str] = {}
    manifests = {key: _read(workdir / job.manifest) for key, job in plan.jobs.items()}
    stale: dict[str, str] = {}
    for key, job in plan.jobs.items():
        manifest = manifests[key]
        if manifest is None:
            continue
        code = manifest.get("code") or {}
        if job.stage not in digests:
            digests[job.stage] = code_digest(job.stage, code_root)
        if code.get("code_scope") != CODE_SCOPE or code.get("code_digest") != digests[job.stage]:
            stale[job.manifest] = (
                f"built by other {job.stage} job code (code digest "
                f"{str(code.get('code_digest'))[:12]}, this checkout's {digests[job.stage][:12]})"
            )
            continue
        recorded = manifest.get("inputs") or {}
        for name, upstream_key in sorted(job.inputs.items()):
            upstream = manifests.get(upstream_key)
            was = (recorded.get(name) or {}).get("digest")
            if upstream is not None and upstream.get("digest") != was:
                stale[job.manifest] = (
                    f"input {name!r} is now payload {str(upstream.get('digest'))[:12]}, it was "
                    f"built from {str(was)[:12]}"
                )
                break
    return stale


def align_times(plan: Plan, stale: dict, workdir: Path = Path(".")) -> list[str]:
    """Give each current finished artifact's manifest the modification time of its newest input
    manifest where it is older (equal is not newer for Snakemake); returns the manifests set.

    Only times change, never bytes, and only of artifacts whose content is current: a stale one
    keeps its times. Jobs are taken in plan order (inputs first), so a chain is aligned in one
    pass.
    """
    aligned = []
    for job in plan.jobs.values():
        own = workdir / job.manifest
        if job.manifest in stale or not own.is_file() or not job.inputs:
            continue
        inputs = [workdir / plan.jobs[key].manifest for key in job.inputs.values()]
        if not all(path.is_file() for path in inputs):
            continue
        newest = max(path.stat().st_mtime_ns for path in inputs)
        status = own.stat()
        if status.st_mtime_ns < newest:
            os.utime(own, ns=(status.st_atime_ns, newest))
            aligned.append(job.manifest)
    return aligned
