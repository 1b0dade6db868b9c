"""Tracking settings from the environment, and the connection to the store.

See ``reprolm.tracking`` for the environment variables. Nothing here imports MLflow at module
level: ``connect`` does, only when a run is actually sent or read.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_ENABLE = "REPROLM_MLFLOW"
ENV_MODE = "REPROLM_MLFLOW_MODE"
ENV_INVOCATION = "REPROLM_MLFLOW_INVOCATION"
ENV_PARENT = "REPROLM_MLFLOW_PARENT_RUN"
ENV_EXPERIMENT = "REPROLM_MLFLOW_EXPERIMENT"
ENV_SPOOL = "REPROLM_MLFLOW_SPOOL"
ENV_ARTIFACT_ROOT = "REPROLM_MLFLOW_ARTIFACT_ROOT"
ENV_CONNECT_TIMEOUT = "REPROLM_MLFLOW_CONNECT_TIMEOUT"
DEFAULT_EXPERIMENT = "reprolm"
SPOOL_DIR = Path(".reprolm") / "mlflow-spool"
# MLflow's own client defaults retry for minutes; an unreachable server must cost seconds.
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no network at run time
}


def workdir() -> Path:
    """The working directory the workflow runs in (artifact paths are relative to it)."""
    return Path.cwd()


def tracking_uri(where: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI``, else the embedded SQLite store under the working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(Path(where or workdir()) / 'mlruns.db').resolve()}"


def artifact_location(where: Path | None = None) -> str | None:
    """Artifact root for a new experiment: explicit for local stores, the server's otherwise."""
    if os.environ.get(ENV_ARTIFACT_ROOT):
        return os.environ[ENV_ARTIFACT_ROOT]
    if is_remote(tracking_uri(where)):
        return None
    return (Path(where or workdir()) / "mlartifacts").resolve().as_uri()


def spool_dir(where: Path | None = None) -> Path:
    return Path(os.environ.get(ENV_SPOOL) or Path(where or workdir()) / SPOOL_DIR)


def experiment_name() -> str:
    return os.environ.get(ENV_EXPERIMENT) or DEFAULT_EXPERIMENT


def enabled() -> bool:
    """Jobs track inside a workflow (invocation exported) or when asked to; ``off`` wins."""
    flag = os.environ.get(ENV_ENABLE, "").strip().lower()
    if flag in ("off", "0", "false", "no"):
        return False
    return bool(os.environ.get(ENV_INVOCATION)) or flag in ("on", "1", "true", "yes")


def masked_uri(uri: str) -> str:
    """The URI without user:password, for printing."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return uri


def is_remote(uri: str) -> bool:
    return urlsplit(uri).scheme in ("http", "https")


def mode() -> str:
    """``direct`` or ``deferred`` (see the module docstring for the default)."""
    default = "direct" if is_remote(tracking_uri()) else "deferred"
    return os.environ.get(ENV_MODE, default).lower()


def apply_mlflow_env() -> None:
    for name, value in MLFLOW_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)


def reachable(uri: str | None = None) -> bool:
    """A fast TCP probe of a remote tracking server (local stores are always reachable)."""
    uri = uri or tracking_uri()
    if not is_remote(uri):
        return True
    parts = urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = float(os.environ.get(ENV_CONNECT_TIMEOUT) or 2)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


class Unreachable(ConnectionError):
    """The tracking store cannot be reached now; the event belongs in the spool."""


def connect(uri: str | None = None) -> Any:
    """An ``MlflowClient`` for the store (imports MLflow: ~2 s, hence only here)."""
    uri = uri or tracking_uri()
    if not reachable(uri):
        raise Unreachable(f"MLflow tracking server {masked_uri(uri)} is not reachable")
    apply_mlflow_env()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def is_connection_error(error: BaseException) -> bool:
    """Whether a failure means "try later" (server down, timeout, locked SQLite)."""
    text = f"{type(error).__name__}: {error}".lower()
    markers = (
        "connection", "timed out", "timeout", "max retries", "unreachable", "database is locked",
        "temporarily unavailable", "503", "502", "504",
    )  # fmt: skip
    return isinstance(error, (ConnectionError, TimeoutError)) or any(m in text for m in markers)
