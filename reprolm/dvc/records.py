"""What DVC holds of an artifact directory, and what that means for ``reprolm audit``.

``artifact_status`` reads the enclosing DVC repository's record of a directory (stage, recorded
hash, workspace state, cache and remote presence); ``judge`` says whether that record vouches
for the artifact. DVC is imported lazily (~1 s).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def find_dvc_root(path: Path) -> Path | None:
    """The nearest directory at or above ``path`` that holds ``.dvc/``."""
    path = Path(path).resolve()
    for candidate in (path, *path.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    return None


@contextmanager
def open_repo(root: Path) -> Iterator[Any]:
    """A ``dvc.repo.Repo`` at ``root`` (imported lazily: DVC costs ~1 s to import)."""
    from dvc.repo import Repo

    repo = Repo(os.fspath(root))
    try:
        yield repo
    finally:
        repo.close()


def artifact_status(artifact_dir: Path, *, remote: str | None = None) -> dict[str, Any]:
    """What DVC holds of an artifact directory.

    Returns ``{"tracked", "stage", "md5", "nfiles", "workspace", "in_cache", "in_remote",
    "remote"}``: ``tracked`` — some stage of the enclosing DVC repo has the directory as an
    out; ``stage`` — that stage's name; ``md5`` — the recorded directory hash (``"<md5>.dir"``,
    ``None`` if never committed); ``nfiles`` — files in the recorded version; ``workspace`` —
    ``"clean"`` (files match the record), ``"modified"``, ``"missing"`` or ``None`` when
    there is no record; ``in_cache`` — the local cache holds every object of the recorded
    version; ``in_remote`` — the remote does (``None`` when no remote is configured or it
    cannot be reached); ``remote`` — the remote's name or ``None``.
    """
    artifact_dir = Path(artifact_dir).resolve()
    root = find_dvc_root(artifact_dir)
    if root is None:
        return _untracked()
    with open_repo(root) as repo:
        return status_in_repo(repo, artifact_dir, remote=remote)


def artifact_statuses(
    artifact_dirs: list[Path], *, remote: str | None = None
) -> dict[Path, dict[str, Any]]:
    """``artifact_status`` of many directories (keyed by resolved path), opening each DVC repo
    once: opening a repo costs ~0.5 s, which dominated auditing a whole lineage."""
    results: dict[Path, dict[str, Any]] = {}
    by_root: dict[Path, list[Path]] = {}
    for directory in (Path(d).resolve() for d in artifact_dirs):
        root = find_dvc_root(directory)
        if root is None:
            results[directory] = _untracked()
        else:
            by_root.setdefault(root, []).append(directory)
    for root, directories in by_root.items():
        with open_repo(root) as repo:
            for directory in directories:
                results[directory] = status_in_repo(repo, directory, remote=remote)
    return results


def _untracked() -> dict[str, Any]:
    return {
        "tracked": False,
        "stage": None,
        "md5": None,
        "nfiles": None,
        "workspace": None,
        "in_cache": False,
        "in_remote": None,
        "remote": None,
    }


def status_in_repo(repo: Any, artifact_dir: Path, *, remote: str | None = None) -> dict[str, Any]:
    """``artifact_status`` with an open ``Repo`` (one index for many artifacts)."""
    status = _untracked()
    artifact_dir = Path(artifact_dir).resolve()
    out = next((o for o in repo.index.outs if Path(o.fs_path).resolve() == artifact_dir), None)
    if out is None:
        return status
    status.update(tracked=True, stage=out.stage.name or out.stage.addressing)
    if not out.hash_info or not out.hash_info.value:
        return status
    status["md5"] = out.hash_info.value
    status["nfiles"] = out.meta.nfiles if out.meta else None
    workspace = next(iter(out.workspace_status().values()), "clean")
    status["workspace"] = "missing" if workspace == "deleted" else workspace
    status["in_cache"] = not out.changed_cache()
    status.update(_remote_status(repo, out, remote))
    return status


def _remote_status(repo: Any, out: Any, remote: str | None) -> dict[str, Any]:
    """``in_remote`` and ``remote`` for one committed out (``None`` without a usable remote)."""
    from dvc_data.hashfile.tree import Tree

    name = remote or repo.config["core"].get("remote")
    if not name:
        return {"in_remote": None, "remote": None}
    try:
        odb = repo.cloud.get_remote_odb(name, hash_name=out.hash_name)
        if _local_root_absent(odb):
            return {"in_remote": None, "remote": name}  # unmounted or another machine's path
        oids = [out.hash_info.value]
        if out.hash_info.isdir:
            if not odb.exists(out.hash_info.value):
                return {"in_remote": False, "remote": name}
            # The tree listing comes from the remote itself: the local cache may lack it.
            tree = Tree.load(odb, out.hash_info)
            oids += [oid.value for _, _, oid in tree]
        missing = [oid for oid in oids if not odb.exists(oid)]
    except Exception:  # an unreachable or misconfigured remote: unknown, not "absent"
        return {"in_remote": None, "remote": name}
    return {"in_remote": not missing, "remote": name}


def _local_root_absent(odb: Any) -> bool:
    """A local-path remote whose directory does not exist: unreachable here, not empty."""
    protocol = getattr(odb.fs, "protocol", None)
    local = protocol == "local" or (isinstance(protocol, tuple) and "local" in protocol)
    return local and not os.path.isdir(odb.path)


def in_dvc_repo(directory: Path) -> bool:
    """Whether ``directory`` lies in a DVC repository (some parent holds ``.dvc/``)."""
    return any((parent / ".dvc").is_dir() for parent in (directory, *directory.parents))


def judge(record: dict[str, Any]) -> tuple[bool | None, str]:
    """``artifact_status``'s record as (holds the artifact?, detail); None: nothing to check,
    or not checkable here (neither the cache nor a reachable remote to ask).

    False when the workspace differs from the record, or neither the cache nor a reachable
    remote holds it.
    """
    if not record["tracked"]:
        return None, "not tracked by DVC"
    if not record.get("md5"):
        return None, f"DVC stage {record.get('stage')} never committed"
    remote = record.get("remote")
    where = f"cache {'yes' if record.get('in_cache') else 'no'}" + (
        f", remote {remote} {_yes_no(record.get('in_remote'))}" if remote else ", no remote"
    )
    if record.get("workspace") not in (None, "clean"):
        return False, f"DVC record {record['md5']}: workspace {record['workspace']} ({where})"
    if not record.get("in_cache") and record.get("in_remote") is None:
        return None, (
            f"DVC cache lacks {record['md5']} and "
            + (f"remote {remote} is unreachable" if remote else "no remote is configured")
            + f" ({where})"
        )
    if not record.get("in_cache") and record.get("in_remote") is not True:
        return False, f"neither DVC cache nor remote holds {record['md5']} ({where})"
    return True, f"{record['md5']} ({where})"


def _yes_no(value: Any) -> str:
    return "unreachable" if value is None else "yes" if value else "no"
