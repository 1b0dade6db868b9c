"""One numeric code path for every job, whatever the machine or the user's environment says.

The bytes a torch job writes depend on the vector ISA its kernels were dispatched to: ATen's
CPU capability (AVX-512 vs AVX2 kernels), MKL's code branch and oneDNN's ISA cap each move a
payload byte on their own (measured: issue 11). :func:`pin` sets all of them to one fixed
value, overriding any user value, before torch, MKL or oneDNN initialise: ``reprolm.runner``
calls it at import time (each ``stages/<name>/__main__.py`` imports the runner before its stage
module) and ``reprolm.launch`` puts the same values into the environment of torchrun workers.

AVX2 is the widest ISA that every x86-64 server CPU of the last decade (Intel and AMD) has.
``MKL_CBWR=AVX2,STRICT`` is MKL's Conditional Numerical Reproducibility mode: same results on
any CPU that supports AVX2 (Intel or compatible), and STRICT also across thread counts for
the BLAS calls that support it.

A CPU that cannot run the pinned path (x86-64 without AVX2, or not x86-64 at all) is refused:
:func:`pin` raises :class:`NumericsError` naming the flags it found, rather than letting the
libraries fall back silently to another code path under a manifest that says "avx2". The runner
turns that into the job's error at start (``reprolm.runner.execute``). The CPU-flag source
(:data:`CPUINFO`, or the ``cpuinfo`` text and ``machine`` arguments) is injectable for tests.

Escape hatch: ``REPROLM_NUMERICS=native`` leaves the machine's fastest dispatch in place (for
benchmarking the cost, a CPU without AVX2, or a large run that never needs another machine to
rebuild it). The manifest records it (``environment.numerics.pinned: false``), so such a job is
known not to be portable.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

PINNED_ISA = "avx2"
PIN: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",  # oneDNN's older name for the same cap
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's OpenBLAS: its AVX2 kernels
}
ESCAPE_VARIABLE = "REPROLM_NUMERICS"
NATIVE = "native"
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile")
CPUINFO = Path("/proc/cpuinfo")
X86_64 = frozenset({"x86_64", "amd64"})  # platform.machine() on Linux/macOS and on Windows
REQUIRED_FLAG = "avx2"


class NumericsError(RuntimeError):
    """This CPU cannot run the pinned numeric code path (the message says what to do)."""


def is_pinned(environ: MutableMapping[str, str] = os.environ) -> bool:
    """False only when the user asked for the machine's native dispatch."""
    return environ.get(ESCAPE_VARIABLE, "").strip().lower() != NATIVE


def pin(
    environ: MutableMapping[str, str] = os.environ,
    *,
    cpuinfo: str | None = None,
    machine: str | None = None,
) -> bool:
    """Set every variable of :data:`PIN` in ``environ`` (overriding user values); return
    whether the pin is in place. Too late for a library already initialised in this process.

    Raises :class:`NumericsError` (``environ`` untouched) when the CPU cannot run the pinned
    path; ``cpuinfo`` (``/proc/cpuinfo`` text) and ``machine`` stand in for this machine's."""
    if not is_pinned(environ):
        return False
    check(environ, cpuinfo=cpuinfo, machine=machine)
    environ.update(PIN)
    return True


def check(
    environ: MutableMapping[str, str] = os.environ,
    *,
    cpuinfo: str | None = None,
    machine: str | None = None,
) -> None:
    """Raise :class:`NumericsError` if the pin is asked for and this CPU cannot run it."""
    if not is_pinned(environ):
        return
    problem = unsupported(_read(CPUINFO) if cpuinfo is None else cpuinfo, machine)
    if problem:
        raise NumericsError(
            f"{problem}: reprolm pins every job to the {PINNED_ISA.upper()} numeric code path "
            "(reprolm.numerics), which this CPU cannot run, so its bytes would not be the "
            f"recorded ones. Set {ESCAPE_VARIABLE}={NATIVE} to run on this machine's own "
            "dispatch: its artifacts then record native numerics "
            "(environment.numerics.pinned: false) and are not expected to match pinned "
            "artifacts of other machines bit for bit."
        )


def unsupported(cpuinfo: str | None, machine: str | None = None) -> str | None:
    """Why a CPU cannot run the pinned path (None when it can, or when its flags are unknown).

    ``cpuinfo`` is ``/proc/cpuinfo`` text (None: unreadable, e.g. not Linux); ``machine`` is
    :func:`platform.machine` (default: this machine's)."""
    machine = platform.machine() if machine is None else machine
    if machine.lower() not in X86_64:
        return f"this CPU is {machine or 'of an unknown architecture'}, not x86-64"
    have = parse_flags(cpuinfo) if cpuinfo is not None else None
    if have is None or REQUIRED_FLAG in have:
        return None
    found = [flag for flag in CPU_FLAGS if flag in have]
    return (
        f"this x86-64 CPU ({_model(cpuinfo)}) has no {REQUIRED_FLAG} "
        f"(ISA flags found: {', '.join(found) or 'none of ' + ', '.join(CPU_FLAGS)})"
    )


def parse_flags(cpuinfo: str) -> set[str] | None:
    """The flags of the first ``flags`` line of ``/proc/cpuinfo`` text (None: no such line)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return None


def _model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return "unknown model"


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cpu_flags(cpuinfo: Path | None = None) -> dict[str, bool]:
    """Which of the ISA extensions that change a kernel's choice this CPU has."""
    text = _read(CPUINFO if cpuinfo is None else cpuinfo)
    have = parse_flags(text) if text is not None else None
    return {} if have is None else {flag: flag in have for flag in CPU_FLAGS}


def _blas() -> dict[str, Any]:
    """The BLAS libraries loaded in this process (threadpoolctl), by library file name.

    Keyed by file, not by kind: numpy and scipy each bundle an OpenBLAS (of different versions),
    and threadpoolctl lists them in load order, which varies between jobs.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return {
        Path(str(pool.get("filepath", "?"))).name: {
            "api": pool.get("internal_api"),
            "version": pool.get("version"),
            "architecture": pool.get("architecture"),
        }
        for pool in sorted(pools, key=lambda pool: str(pool.get("filepath")))
    }


def _torch_record() -> dict[str, Any]:
    """What torch itself reports (only if torch is loaded: never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    record: dict[str, Any] = {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
    config = torch.__config__.show()
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        found = re.search(rf"\b{key}=([^,\s]+)", config)
        record[key.lower()] = found.group(1) if found else None
    for line in config.splitlines():
        line = line.strip(" -")
        if line.startswith(("Intel(R) oneAPI Math Kernel Library", "Intel(R) Math Kernel")):
            record["mkl"] = line
        elif line.startswith(("Intel(R) MKL-DNN", "oneDNN", "Intel(R) oneDNN")):
            record["onednn"] = line
    record["mkldnn_enabled"] = bool(torch.backends.mkldnn.enabled)
    return record


def capture(environ: MutableMapping[str, str] = os.environ) -> dict[str, Any]:
    """The ``environment.numerics`` block of a manifest."""
    from reprolm.environment import cpu_model

    pinned = is_pinned(environ)
    return {
        "pinned": pinned,
        "pinned_isa": PINNED_ISA if pinned else None,
        "variables": {name: environ.get(name) for name in (*PIN, ESCAPE_VARIABLE)},
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "blas": _blas(),
        **_torch_record(),
    }
