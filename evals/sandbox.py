"""Run untrusted Python (model-written code) in a sandboxed child process, never in this one.

Each program runs in a fresh ``python -I -S -B`` child, in its own temporary directory, with:

* **no network**: a new network namespace (``unshare -rn``: only a loopback that is down, so
  even ``127.0.0.1`` is unreachable) and a new PID namespace whose first process is our waiter;
  when it ends, the kernel kills every process left in the namespace (a ``setsid`` grandchild
  too). Where the kernel refuses namespaces, code is **not run** unless the caller opts out
  (``allow_network=True``, or ``REPROLM_SANDBOX_ALLOW_NETWORK=1``, which the CLI flag
  ``--sandbox-allow-network`` sets); the opt-out keeps every other guard;
* **rlimits**: CPU seconds, address space, file size, number of processes, no core files;
* a **wall-clock timeout**, after which the whole process group is killed (the child starts a
  new session; ``killpg`` SIGKILL);
* an **audit hook** installed before the program starts: no writes, renames, deletions or
  permission changes outside the temporary directory, no ``subprocess``/``os.system``/
  ``exec*``/``posix_spawn``, no ``ctypes``;
* a stripped environment (``PATH``, ``HOME`` = the temporary dir, ``LANG``), stdin closed.

A program *passes* only when it runs to its end: exit status 0 **and** the waiter's
end-of-program line, so ``sys.exit(0)`` or ``os._exit(0)`` before the tests have run is a
failure. Outcomes: ``passed``, ``failed`` (an exception, an early exit), ``timeout`` (wall
clock or CPU limit), ``crashed`` (memory limit, a signal, a refused operation), each with a
reason. What this does NOT protect against is listed in docs/evals/tulu3.md (Code).
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ALLOW_NETWORK_ENV = "REPROLM_SANDBOX_ALLOW_NETWORK"
NAMESPACES = ("unshare", "-rn", "--pid", "--fork", "--kill-child")
STATUSES = ("passed", "failed", "timeout", "crashed")
EXIT_FAILED, EXIT_MEMORY, EXIT_REFUSED = 1, 3, 4


@dataclass(frozen=True)
class Limits:
    """Per-program limits (the HumanEval defaults)."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30  # address space
    file_bytes: int = 16 << 20  # largest file the program may write
    processes: int = 32  # RLIMIT_NPROC (not enforced for root: see the docs)


@dataclass(frozen=True)
class Outcome:
    status: str  # one of STATUSES
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "reason": self.reason}


class SandboxUnavailable(RuntimeError):
    """Namespaces are refused here and the caller did not opt out."""


# The child's first program (PID 1 of its namespace). It forks: the child installs the audit
# hook and runs the program; PID 1 waits, prints the end-of-program token only when the program
# returned normally, and exits with its status (a signal N as 128 + N).
BOOTSTRAP = r"""
import os, sys
token, program, root = sys.argv[1], sys.argv[2], os.path.realpath(sys.argv[3])
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PATH_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
               "os.symlink", "os.link", "os.truncate", "os.utime", "shutil.rmtree",
               "os.chflags", "os.lchown", "os.lchmod", "os.setxattr", "os.removexattr"}
NEVER = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
         "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "os.startfile", "pty.spawn",
         "os.forkpty", "sys.remote_exec"}

class Refused(BaseException):
    pass

def inside(path):
    if isinstance(path, int):
        return True
    path = os.path.realpath(os.fsdecode(path))
    return path == root or path.startswith(root + os.sep)

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writes = any(c in (mode or "") for c in "wax+") or (flags or 0) & WRITE_FLAGS
        if writes and path is not None and not inside(path):
            raise Refused(f"write outside the sandbox: {path!r}")
    elif event in PATH_EVENTS:
        for path in args[:2]:
            if isinstance(path, (str, bytes, os.PathLike)) and not inside(path):
                raise Refused(f"{event} outside the sandbox: {path!r}")
    elif event in NEVER:
        raise Refused(f"{event} is not allowed in the sandbox")

pid = os.fork()
if pid == 0:
    sys.argv = [program]
    code = 0
    try:
        sys.addaudithook(hook)
        import runpy
        runpy.run_path(program, run_name="__main__")
    except Refused as error:
        print(f"refused: {error}", file=sys.stderr)
        code = 4
    except MemoryError:
        print("memory: MemoryError", file=sys.stderr)
        code = 3
    except SystemExit as error:
        print(f"exit: sys.exit({error.code!r}) before the program's end", file=sys.stderr)
        code = 1
    except BaseException as error:
        print(f"error: {type(error).__name__}: {str(error)[:300]}", file=sys.stderr)
        code = 1
    else:
        sys.stdout.flush()
        os.write(1, ("\n" + token + "\n").encode())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
_, status = os.waitpid(pid, 0)
if os.WIFSIGNALED(status):
    os.write(2, f"\nsignal: {os.WTERMSIG(status)}\n".encode())
    os._exit(128 + os.WTERMSIG(status))
os._exit(os.waitstatus_to_exitcode(status))
"""


@lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Whether this kernel lets us create user, network and PID namespaces."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(
            [*NAMESPACES, "true"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def check_available(allow_network: bool = False) -> bool:
    """True when namespaces isolate the program; raise unless the caller opted out."""
    if namespaces_available():
        return True
    if allow_network or os.environ.get(ALLOW_NETWORK_ENV) == "1":
        return False
    raise SandboxUnavailable(
        "cannot create a network namespace here (`unshare -rn true` fails: the kernel or "
        "container forbids unprivileged user namespaces), so generated code is not run; "
        "enable them (sysctl kernel.unprivileged_userns_clone=1 / "
        "user.max_user_namespaces > 0), or opt out knowingly with the CLI flag "
        f"--sandbox-allow-network (or {ALLOW_NETWORK_ENV}=1): the code then runs with this "
        "machine's network and without the PID namespace; every other limit still applies"
    )


def _rlimits(limits: Limits):
    def apply() -> None:
        cpu = max(1, int(limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_program(
    source: str, limits: Limits = Limits(), *, allow_network: bool = False
) -> tuple[Outcome, str]:
    """Run ``source`` in a sandboxed child; return (outcome, the child's stdout + stderr)."""
    isolated = check_available(allow_network)
    token = "reprolm-sandbox-end-" + secrets.token_hex(16)
    work = Path(tempfile.mkdtemp(prefix="reprolm-sandbox-"))
    try:
        (work / "program.py").write_text(source, encoding="utf-8")
        (work / "bootstrap.py").write_text(BOOTSTRAP, encoding="utf-8")
        command = [
            sys.executable, "-I", "-S", "-B", str(work / "bootstrap.py"), token,
            str(work / "program.py"), str(work),
        ]  # fmt: skip
        if isolated:
            command = [*NAMESPACES, *command]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
        child = subprocess.Popen(
            command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_rlimits(limits),
        )  # fmt: skip
        try:
            out, err = child.communicate(timeout=limits.wall_seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(child.pid)
            out, err = child.communicate()
            timed_out = True
        _kill_group(child.pid)  # whatever the program left behind in its group
        text = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
        return _outcome(child.returncode, out, err, token, timed_out, limits), text
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _last(err: bytes, prefix: str) -> str | None:
    lines = [x for x in err.decode("utf-8", "replace").splitlines() if x.startswith(prefix)]
    return lines[-1][len(prefix) :].strip() if lines else None


def _outcome(
    code: int, out: bytes, err: bytes, token: str, timed_out: bool, limits: Limits
) -> Outcome:
    if timed_out:
        return Outcome("timeout", f"wall clock over {limits.wall_seconds:g} s; group killed")
    signalled = -code if code < 0 else (code - 128 if code > 128 else None)
    if signalled == signal.SIGXCPU:
        return Outcome("timeout", f"CPU limit of {limits.cpu_seconds} s")
    if code == 0 and token.encode() in out.splitlines():
        return Outcome("passed", "")
    if code == 0:
        return Outcome("failed", "exited before the program's end (os._exit?)")
    if code == EXIT_MEMORY:
        return Outcome("crashed", "memory limit: MemoryError")
    if code == EXIT_REFUSED:
        return Outcome("crashed", _last(err, "refused:") or "refused operation")
    if code == EXIT_FAILED:
        reason = _last(err, "error:") or _last(err, "exit:") or "failed"
        return Outcome("failed", reason)
    if signalled is not None:
        name = signal.Signals(signalled).name if signalled in signal.valid_signals() else ""
        return Outcome("crashed", f"killed by signal {signalled} {name}".strip())
    return Outcome("crashed", f"exit status {code}: {err.decode('utf-8', 'replace')[-200:]}")


def run_many(
    sources: list[str], limits: Limits = Limits(), *, workers: int | None = None,
    allow_network: bool = False,
) -> list[Outcome]:  # fmt: skip
    """:func:`run_program` over many programs, ``workers`` children at a time (order kept)."""
    check_available(allow_network)
    workers = workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(
            pool.map(lambda s: run_program(s, limits, allow_network=allow_network)[0], sources)
        )
