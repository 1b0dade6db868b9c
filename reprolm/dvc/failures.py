"""DVC failures as one paragraph: what failed (a remote, the cache, the workspace), which path,
why (permission denied, read-only, missing directory, disk full) and what to do.

DVC raises some OS errors raw (a traceback of 50 lines) and logs others per file before raising
"N files failed to upload"; ``explained`` captures both while a DVC operation runs and raises
one ``StorageError`` instead (the CLI exits 2 with its message). Remote URLs are shown without
credentials. ``check_remote`` refuses a local remote whose directory is absent before DVC
silently creates it (push) or reports every artifact missing (pull).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reprolm.diskspace import existing_ancestor, free_space
from reprolm.tracking.config import masked_uri

DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")
CAUSES = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "missing directory",
    errno.ENOTDIR: "a regular file where a directory should be",
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
}


class StorageError(RuntimeError):
    """A DVC operation failed; the message names the remote or cache, the path and the fix."""


@dataclass(frozen=True)
class Remote:
    """A configured DVC remote: its name, its URL without credentials, its local directory."""

    name: str
    url: str
    path: Path | None  # None: not a local directory (s3://, ssh://...)

    def __str__(self) -> str:
        return f"remote {self.name} ({self.url})"


def configured_remote(root: Path, name: str | None = None) -> Remote | None:
    """The remote ``name`` (default: ``core.remote``) of the DVC project at ``root``."""
    from dvc.config import Config

    try:
        config = Config(dvc_dir=os.fspath(Path(root) / ".dvc"))
    except Exception:  # an unreadable config: DVC's own error comes with the operation
        return None
    name = name or config["core"].get("remote")
    url = config["remote"].get(name, {}).get("url") if name else None
    if not name or not url:
        return None
    local = "://" not in url or url.startswith("file://")
    path = Path(url.removeprefix("file://")) if local else None
    return Remote(name, masked_uri(url), path)


def _missing_part(path: Path) -> Path:
    """The first component of ``path`` that does not exist (or is not a directory)."""
    path = Path(os.path.abspath(path))
    for part in [*reversed(path.parents), path]:
        if not part.is_dir():
            return part
    return path


def check_remote(remote: Remote | None, *, writing: bool) -> None:
    """Refuse a local remote that is not there: its directory for reading, its parent for
    writing (DVC would create a whole tree where, say, a disk is not mounted)."""
    if remote is None or remote.path is None:
        return
    needed = remote.path.parent if writing else remote.path
    if needed.is_dir():
        return
    missing = _missing_part(needed)
    if missing.exists():
        what, fix = "is a regular file where a directory should be", f"Move {missing} away"
    else:
        what = "does not exist (missing directory)"
        fix = f"Mount the disk that holds it or create the directory (`mkdir -p {needed}`)"
    raise StorageError(
        f"{remote}: {missing} {what}, so {remote.path} cannot be "
        + ("written" if writing else "read")
        + f". {fix}, or point the remote at the right place: "
        f"`dvc remote modify --local {remote.name} url DIR`."
    )


def _oserror(error: BaseException, records: list[logging.LogRecord]) -> OSError | None:
    """The first OS error in ``error``'s chain or in the errors DVC logged meanwhile."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    seen += [r.exc_info[1] for r in records if r.exc_info and r.exc_info[1] is not None]
    return next((e for e in seen if isinstance(e, OSError) and e.errno), None)


def _under(path: Path, directory: Path | None) -> bool:
    if directory is None:
        return False
    return Path(os.path.abspath(path)).is_relative_to(Path(os.path.abspath(directory)))


def _failed_path(error: OSError, remote: Remote | None, cache: Path) -> Path | None:
    names = [Path(os.fsdecode(n)) for n in (error.filename2, error.filename) if n is not None]
    for directory in (remote.path if remote else None, cache):
        if found := next((n for n in names if _under(n, directory)), None):
            return found
    return names[0] if names else None


def _fix(error: OSError, path: Path, directory: Path, where: str, redirect: str) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        directory = existing_ancestor(path.parent)
        return f"Make {directory} writable for this user (`chmod u+w` or `chown`), or {redirect}."
    if error.errno == errno.EROFS:
        directory = existing_ancestor(path)
        return (
            f"The file system holding {directory} is mounted read-only: remount it, or {redirect}."
        )
    if error.errno == errno.ENOTDIR:
        part = _missing_part(path)
        return f"{part} is a regular file: move it away, or {redirect}."
    if error.errno == errno.ENOENT:
        return (
            f"{_missing_part(path.parent)} does not exist: mount the disk or create the "
            f"directory, or {redirect}."
        )
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"Free space on the disk holding {directory}, or {redirect}."
    return f"Fix {where} and rerun, or {redirect}."


def _explain_dvc(error: BaseException, remote: Remote | None) -> str:
    """A DVC error that no OS error explains: a missing plugin, objects the remote lacks."""
    from dvc.exceptions import CheckoutError

    target = str(remote) if remote else "no DVC remote configured"
    if isinstance(error, ImportError):
        return f"{target}: {error}; install it in this environment, then rerun."
    if isinstance(error, CheckoutError):
        missing = sorted(str(t) for t in error.target_infos)
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if missing[3:] else "")
        return (
            f"{target}: {len(missing)} artifact(s) are neither in the DVC cache nor on the "
            f"remote ({shown}). Push them from the machine that built them (`reprolm dvc "
            "push`), or pull from the remote that holds them (`reprolm dvc pull --remote NAME`; "
            "`dvc remote list`)."
        )
    detail = " ".join(str(error).split()) or type(error).__name__
    return f"{target}: {detail}. Check the remote (`dvc remote list`) and rerun."


def explain(
    error: BaseException, root: Path, remote: Remote | None, records: list[logging.LogRecord]
) -> str:
    """One paragraph for a failed DVC operation (``records``: errors DVC logged meanwhile)."""
    cache = Path(root).resolve() / ".dvc" / "cache"
    oserror = _oserror(error, records)
    if oserror is None:
        return _explain_dvc(error, remote)
    path = _failed_path(oserror, remote, cache) or cache
    cause = CAUSES.get(oserror.errno, oserror.strerror or "error")
    if remote and remote.path and _under(path, remote.path):
        where, directory = str(remote), remote.path
        redirect = f"point the remote elsewhere: `dvc remote modify --local {remote.name} url DIR`"
    elif _under(path, cache):
        where, directory = f"the DVC cache ({cache})", cache
        redirect = "move the cache: `dvc cache dir DIR`"
    else:
        where, directory = "the workspace", existing_ancestor(path.parent)
        redirect = "run from a writable copy of the project"
    if oserror.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = f"{cause} ({free_space(path)})"
    return f"{where}: {cause} at {path}. {_fix(oserror, path, directory, where, redirect)}"


class _Capture(logging.Filter):
    """Keeps DVC's logged errors for ``explain`` instead of printing them one per file."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if all(record is not kept for kept in self.records):  # each handler asks again
            self.records.append(record)
        return False


def _dvc_handlers() -> list[logging.Handler]:
    """DVC's console handlers (a record of ``dvc_data.x`` reaches them by propagation, so a
    filter must sit on the handlers, not on the loggers)."""
    handlers: list[logging.Handler] = []
    for name in DVC_LOGGERS:
        handlers += [h for h in logging.getLogger(name).handlers if h not in handlers]
    return handlers


@contextmanager
def explained(root: Path, remote_name: str | None = None) -> Iterator[Remote | None]:
    """Run a DVC operation; its OS and DVC errors become one ``StorageError`` paragraph."""
    from dvc.exceptions import DvcException

    remote = configured_remote(root, remote_name)
    capture = _Capture()
    handlers = _dvc_handlers()
    for handler in handlers:
        handler.addFilter(capture)
    try:
        yield remote
    except (OSError, DvcException, ImportError) as error:
        if isinstance(error, OSError) and not error.errno:
            raise  # the project's own message (e.g. no dvc.yaml), already clear
        raise StorageError(explain(error, root, remote, capture.records)) from None
    finally:
        for handler in handlers:
            handler.removeFilter(capture)
    for record in capture.records:  # logged, yet the operation succeeded: say so, briefly
        print(f"reprolm dvc: DVC reported: {record.getMessage()}", flush=True)
