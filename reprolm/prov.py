"""W3C PROV-JSON export of a lineage (https://www.w3.org/submissions/prov-json/).

Mapping: each artifact is an *entity* (stage, label, fingerprint, digest and its algorithm,
file count, reproducibility level); each job is an *activity* (start and end time when the
manifest records them; a release's embedded copies do not); the stage's code (code digest, git
commit, dirty flag) and the ``reprolm`` platform are *agents*. Relations: ``wasGeneratedBy``
(artifact ← its job), ``used`` (job → each input, role = input name), ``wasDerivedFrom``
(artifact → each input artifact, via the job), ``wasAssociatedWith`` (job → code agent),
``actedOnBehalfOf`` (code agent → platform).
"""

from __future__ import annotations

from typing import Any

from reprolm.canonical import canonical_json
from reprolm.lineage import Lineage, Node

NAMESPACE = "urn:reprolm:"
QNAME = "prov:QUALIFIED_NAME"
PREFIX = {
    "reprolm": NAMESPACE,
    "artifact": f"{NAMESPACE}artifact:",
    "job": f"{NAMESPACE}job:",
    "code": f"{NAMESPACE}code:",
}


def _qname(name: str) -> dict[str, str]:
    """A typed PROV-JSON literal whose value is a qualified name (not a plain string)."""
    return {"$": name, "type": QNAME}


def _local(node: Node) -> str:
    return f"{node.stage}-{node.label}-{node.fingerprint}"


def _entity(node: Node) -> dict[str, Any]:
    manifest = node.manifest
    attributes: dict[str, Any] = {
        "prov:type": _qname("reprolm:Artifact"),
        "prov:label": node.id,
        "reprolm:stage": node.stage,
        "reprolm:label": node.label,
        "reprolm:fingerprint": node.fingerprint,
        "reprolm:digest": manifest.get("digest"),
        "reprolm:digestAlgorithm": manifest.get("digest_algorithm"),
        "reprolm:fileCount": len(manifest.get("files") or {}),
        "reprolm:payloadOnDisk": node.directory is not None,
    }
    level = (manifest.get("reproducibility") or {}).get("level")
    if level:
        attributes["reprolm:reproducibility"] = level
    return {k: v for k, v in attributes.items() if v is not None}


def _activity(node: Node) -> dict[str, Any]:
    manifest, execution = node.manifest, node.manifest.get("execution") or {}
    attributes: dict[str, Any] = {
        "prov:type": _qname("reprolm:Job"),
        "prov:label": f"{node.stage} job {node.label}-{node.fingerprint}",
        "reprolm:config": canonical_json(manifest.get("config") or {}),
    }
    if execution.get("started"):
        attributes["prov:startTime"] = execution["started"]
    if execution.get("ended"):
        attributes["prov:endTime"] = execution["ended"]
    for key, name in (("wall_seconds", "wallSeconds"), ("slurm_job_id", "slurmJobId")):
        if execution.get(key) is not None:
            attributes[f"reprolm:{name}"] = execution[key]
    return attributes


def _code_agent(node: Node) -> tuple[str, dict[str, Any]]:
    code = node.manifest.get("code") or {}
    digest = str(code.get("code_digest") or "unknown")
    attributes = {
        "prov:type": _qname("prov:SoftwareAgent"),
        "prov:label": f"stages.{node.stage} code {digest[:12]}",
        "reprolm:stage": node.stage,
        "reprolm:codeDigest": digest,
    }
    for key in ("commit", "dirty"):
        if code.get(key) is not None:
            attributes[f"reprolm:{key}"] = code[key]
    return f"code:{node.stage}-{digest[:12]}", attributes


def export(lineage: Lineage) -> dict[str, Any]:
    """The PROV-JSON document of ``lineage`` (a plain dict, ready for ``json.dump``)."""
    doc: dict[str, dict[str, Any]] = {
        "prefix": dict(PREFIX),
        "entity": {},
        "activity": {},
        "agent": {
            "reprolm:platform": {"prov:type": _qname("prov:SoftwareAgent"), "prov:label": "reprolm"}
        },
        "wasGeneratedBy": {},
        "used": {},
        "wasDerivedFrom": {},
        "wasAssociatedWith": {},
        "actedOnBehalfOf": {},
    }
    for node in lineage.walk():
        local = _local(node)
        entity, activity = f"artifact:{local}", f"job:{local}"
        doc["entity"][entity] = _entity(node)
        doc["activity"][activity] = _activity(node)
        doc["wasGeneratedBy"][f"_:gen-{local}"] = {"prov:entity": entity, "prov:activity": activity}
        agent, attributes = _code_agent(node)
        doc["agent"][agent] = attributes
        doc["wasAssociatedWith"][f"_:assoc-{local}"] = {
            "prov:activity": activity,
            "prov:agent": agent,
        }
        doc["actedOnBehalfOf"][f"_:deleg-{agent.partition(':')[2]}"] = {
            "prov:delegate": agent,
            "prov:responsible": "reprolm:platform",
        }
        for name, link in sorted(node.links.items()):
            if link.target is None:  # no manifest anywhere: an entity known by its record only
                record = link.record
                used = f"artifact:{record.get('stage')}-missing-{record.get('fingerprint')}"
                doc["entity"][used] = {
                    "prov:type": _qname("reprolm:Artifact"),
                    "reprolm:stage": str(record.get("stage")),
                    "reprolm:fingerprint": str(record.get("fingerprint")),
                    "reprolm:digest": str(record.get("digest")),
                    "reprolm:manifestAvailable": False,
                }
            else:
                used = f"artifact:{_local(lineage.nodes[link.target])}"
            doc["used"][f"_:use-{local}-{name}"] = {
                "prov:activity": activity,
                "prov:entity": used,
                "prov:role": name,
            }
            doc["wasDerivedFrom"][f"_:der-{local}-{name}"] = {
                "prov:generatedEntity": entity,
                "prov:usedEntity": used,
                "prov:activity": activity,
            }
    return doc
