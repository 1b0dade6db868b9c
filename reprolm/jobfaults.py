"""What a job says when the machine, not the recipe, stops it: a full disk or Ctrl-C.

Both end a job with one paragraph and no traceback. The runner removes its scratch directory
before saying it, and installs by two renames with SIGINT held back (``sigint_deferred``), so
"nothing installed" is always true when said, and the previous artifact is untouched.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reprolm.diskspace import free_space

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# A write refused for lack of room: no space, a quota, a file size limit (RLIMIT_FSIZE, ulimit -f).
NO_ROOM = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this process's file size limit (ulimit -f)",
}
# Libraries that write through their own I/O (safetensors in Rust, torch's C++ writer) raise
# errors that carry the OS message as text only.
NO_ROOM_TEXT = re.compile(r"No space left on device|Disk quota exceeded|StorageFull|os error 28")


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped the job; ``installed``: whether its artifact was installed first."""

    def __init__(self, installed: bool) -> None:
        super().__init__("interrupted")
        self.installed = installed


def no_room(error: BaseException) -> tuple[str, Path | None] | None:
    """(cause, path being written) when ``error`` or its causes is a write refused for room."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    for item in seen:
        if isinstance(item, OSError) and item.errno in NO_ROOM:
            name = item.filename2 or item.filename
            return NO_ROOM[item.errno], Path(os.fsdecode(name)) if name is not None else None
    if any(NO_ROOM_TEXT.search(str(item)) for item in seen):
        return NO_ROOM[errno.ENOSPC], None
    return None


def no_room_message(stage: str, cause: str, path: Path | None, output: Path, scratch: Path) -> str:
    """The paragraph of a job that ran out of room (``scratch``: where it was writing)."""
    written = path or scratch
    fix = {
        NO_ROOM[errno.EFBIG]: "Raise the file size limit (`ulimit -f`)",
        NO_ROOM[errno.EDQUOT]: "Free space within your quota on that disk, or raise the quota",
    }.get(cause, "Free space on that disk")
    return (
        f"error: stage {stage}: {cause} writing {written} ({free_space(written)} on its disk). "
        f"Nothing was installed: the partial output was removed and any previous artifact at "
        f"{output} is untouched. {fix}, then rerun the job."
    )


def interrupted_message(stage: str, output: Path, installed: bool, checkpoints: bool) -> str:
    """The line of a job stopped by Ctrl-C."""
    if installed:
        return (
            f"interrupted: stage {stage} had already installed {output} (complete); "
            "nothing to rerun"
        )
    resume = "it resumes from its last checkpoint" if checkpoints else "it starts again"
    return (
        f"interrupted: stage {stage} stopped; nothing installed (any previous artifact at "
        f"{output} is untouched); rerun to continue ({resume})"
    )


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold SIGINT back while the block runs (an install: two renames and a hard link); a
    Ctrl-C pressed meanwhile is delivered when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
