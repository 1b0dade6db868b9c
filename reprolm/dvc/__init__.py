"""DVC as storage and versioned record of artifacts (Snakemake runs jobs; DVC only records them).

* ``pipeline``: ``dvc.yaml`` / ``dvc-params.yaml`` generated from the job plan (``sync``,
  ``check``, ``render``, ``read_stages``).
* ``storage``: init, commit, push, pull (with mtime restoration), status, stale code.
* ``records``: what DVC holds of an artifact directory (``artifact_status``, the check
  ``reprolm audit`` asks for) and what that record means (``judge``).

Absolute imports inside this package (``from dvc.repo import Repo``) mean the real DVC.
"""

from __future__ import annotations

from reprolm.dvc.pipeline import (
    DVC_YAML,
    PARAMS_FILE,
    PROFILE,
    check,
    read_stages,
    render,
    stage_name,
    sync,
)
from reprolm.dvc.records import (
    artifact_status,
    artifact_statuses,
    find_dvc_root,
    in_dvc_repo,
    judge,
    open_repo,
    status_in_repo,
)
from reprolm.dvc.storage import (
    DEFAULT_REMOTE_URL,
    REMOTE_ENV,
    REMOTE_NAME,
    commit,
    commit_on_success,
    init,
    pull,
    push,
    recorded_recipe,
    restore_mtimes,
    stale_code,
    status,
)

__all__ = [
    "DEFAULT_REMOTE_URL", "DVC_YAML", "PARAMS_FILE", "PROFILE", "REMOTE_ENV", "REMOTE_NAME",
    "artifact_status", "artifact_statuses", "check", "commit", "commit_on_success",
    "find_dvc_root", "in_dvc_repo", "init", "judge", "open_repo", "pull", "push",
    "read_stages", "recorded_recipe", "render", "restore_mtimes", "stage_name", "stale_code",
    "status", "status_in_repo", "sync",
]  # fmt: skip
