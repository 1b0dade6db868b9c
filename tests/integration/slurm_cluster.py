"""A real single-node SLURM for tests: munged, slurmctld and slurmd on this host.

Installs Debian's ``slurm-wlm`` and ``munge`` when absent (``SlurmUnavailable`` when apt-get
cannot), writes a ``slurm.conf`` for this host into a private directory, starts the daemons in
the foreground as child processes (no systemd here) and stops them by PID. Clients find the
cluster through ``SLURM_CONF`` (``cluster.env()``); the job steps' nested ``srun`` cannot (the
jobstep plugin drops every ``SLURM_*`` variable but the job id), so the default path,
``/etc/slurm/slurm.conf``, is linked to the private config while the cluster runs (a host with
its own config there is refused).

Run by hand: ``python -m tests.integration.slurm_cluster`` brings a cluster up, prints its
``SLURM_CONF`` and bring-up time, and stops it on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.integration.apt import AptUnavailable, ensure_binaries

PACKAGES = ("slurm-wlm", "munge")
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged", "munge")
MUNGE_RUN = Path("/run/munge")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
PRIVATE_PREFIX = "reprolm-slurm-"
# Jobs stay visible to squeue this long after they end: the plugin's squeue status needs
# MinJobAge >= 3x its first status-check delay.
MIN_JOB_AGE = 300


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed here (no apt-get, or no route to the Debian mirror)."""


def ensure_packages(timeout: float = 600) -> None:
    """Install slurm-wlm and munge with apt-get unless their binaries are already there."""
    try:
        ensure_binaries(PACKAGES, BINARIES, timeout)
    except AptUnavailable as error:
        raise SlurmUnavailable(str(error)) from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _real_memory_mb() -> int:
    """MemTotal in MB, less a margin: slurmd drains a node that reports more than it has."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 9 // 10
    raise RuntimeError("/proc/meminfo has no MemTotal line")


def slurm_conf(root: Path, host: str, cpus: int, memory_mb: int) -> str:
    """A single-node slurm.conf: no cgroups, no accounting daemon, private ports and dirs."""
    return "\n".join(
        [
            "ClusterName=reprolm-test",
            f"SlurmctldHost={host}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=slurm",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"StateSaveLocation={root}/state",
            f"SlurmdSpoolDir={root}/spool",
            f"SlurmctldPidFile={root}/run/slurmctld.pid",
            f"SlurmdPidFile={root}/run/slurmd.pid",
            f"SlurmctldLogFile={root}/log/slurmctld.log",
            f"SlurmdLogFile={root}/log/slurmd.log",
            # cgroups are not usable in this sandbox.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MpiDefault=none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            f"MinJobAge={MIN_JOB_AGE}",
            "ReturnToService=2",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


class SlurmCluster:
    """munged + slurmctld + slurmd for this host; ``stop()`` ends exactly what ``start()`` began."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=PRIVATE_PREFIX))
        self.conf = self.root / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]  # must equal `hostname -s`
        self.processes: list[subprocess.Popen] = []
        self.munged_pid: int | None = None
        self.bring_up_s: float | None = None
        self.linked = False

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a SLURM client (sbatch, squeue, snakemake) for this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf), **extra}

    def start(self, timeout: float = 90) -> SlurmCluster:
        started = time.monotonic()
        # The slurm user must traverse into its state and log dirs.
        self.root.chmod(0o755)
        for name in ("state", "spool", "run", "log"):
            (self.root / name).mkdir()
            shutil.chown(self.root / name, "slurm", "slurm")
        self.conf.write_text(
            slurm_conf(self.root, self.host, os.cpu_count() or 1, _real_memory_mb())
        )
        self.conf.chmod(0o644)
        self._link_system_conf()
        self._start_munged()
        for daemon in ("slurmctld", "slurmd"):
            # -D: foreground, so the PID we hold is the daemon's; -c: clear old state.
            command = [daemon, "-D", "-f", str(self.conf)]
            command += ["-c"] if daemon == "slurmctld" else []
            with open(self.root / "log" / f"{daemon}.out", "wb") as log:
                process = subprocess.Popen(
                    command, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
                self.processes.append(process)
        self._wait_idle(timeout)
        self.bring_up_s = time.monotonic() - started
        return self

    def _link_system_conf(self) -> None:
        if SYSTEM_CONF.is_symlink() and PRIVATE_PREFIX in os.readlink(SYSTEM_CONF):
            SYSTEM_CONF.unlink()  # left behind by a run that was killed
        if SYSTEM_CONF.exists():
            raise RuntimeError(
                f"{SYSTEM_CONF} exists: this host has its own SLURM; run these tests elsewhere"
            )
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self.linked = True

    def _start_munged(self) -> None:
        if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return  # a munged is already serving this host: use it, leave it running
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_RUN, "munge", "munge")
        MUNGE_RUN.chmod(0o755)
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, timeout=30)
        pid_file = MUNGE_RUN / "munged.pid"
        for _ in range(50):
            if pid_file.exists() and pid_file.read_text().strip():
                self.munged_pid = int(pid_file.read_text().strip())
                return
            time.sleep(0.1)
        raise RuntimeError("munged started but wrote no PID file in /run/munge")

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited early:\n{self.logs()}")
            done = subprocess.run(
                ["sinfo", "--noheader", "--format=%T", "--nodes", self.host],
                env=self.env(), capture_output=True, text=True,
            )  # fmt: skip
            state = done.stdout.strip()
            if done.returncode == 0 and state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"node {self.host} not idle after {timeout} s (state {state!r})")

    def logs(self) -> str:
        """The daemons' log tails (for failure messages)."""
        parts = []
        for log in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """End the daemons this object started, by PID; remove the private directory."""
        if self.processes and all(process.poll() is None for process in self.processes):
            # Jobs a failed test left behind: cancel them while slurmctld still answers.
            subprocess.run(["scancel", "--full", f"--user={os.getuid()}"], env=self.env(),
                           capture_output=True, timeout=30)  # fmt: skip
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        if self.munged_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.munged_pid, signal.SIGTERM)
            self.munged_pid = None
        if self.linked:
            SYSTEM_CONF.unlink(missing_ok=True)
            self.linked = False
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    started = time.monotonic()
    ensure_packages()
    cluster = SlurmCluster().start()
    print(f"SLURM_CONF={cluster.conf}  (up in {time.monotonic() - started:.1f} s)", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
