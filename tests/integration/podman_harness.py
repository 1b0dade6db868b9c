"""Real podman for tests: installs it, builds the project's images offline, runs stage jobs.

No registry is reachable here, so the images' base (``debian:bookworm-slim``) is made locally:
``debootstrap --variant=minbase bookworm`` from the mirror apt uses, imported under the name the
Dockerfiles' ``FROM`` asks for, and every build runs with ``--pull=never``. Python packages come
from a wheelhouse filled on the host (``pip download`` with the host's own pip settings, CA bundle
and cache), mounted read-only into the build with a pip.conf that says ``no-index``: the build
never touches the network for pip, never refetches torch, and no index setting lands in a layer.

Podman runs with a private ``containers.conf`` (``CONTAINERS_CONF``: runtime runc, ulimits this
sandbox can grant: it lacks CAP_SYS_RESOURCE and crun fails on its hybrid cgroups) and a private
storage root (``CONTAINERS_STORAGE_CONF``), removed by ``close()``, so /etc and
/var/lib/containers are never touched.

Run by hand: ``python -m tests.integration.podman_harness [family]`` builds an image and prints
the timings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reprolm.containers import DOCKERFILE, build_args
from tests.integration.apt import AptUnavailable, ensure_binaries

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("podman", "runc", "debootstrap")
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What debian:bookworm-slim's apt reads (main, updates, security): the Dockerfiles pin security
# versions, which minbase's single "bookworm main" line would not find.
DEB822_SOURCES = """Types: deb
URIs: {mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""
STORAGE_CONF = """[storage]
driver = "overlay"
graphroot = "{root}/graph"
runroot = "{root}/run"
"""
BUILD_PIP_CONF = "[global]\nno-index = true\nfind-links = /wheels\n"


class PodmanUnavailable(RuntimeError):
    """podman cannot be installed here (no apt-get, or no route to the Debian mirror)."""


def ensure_packages(timeout: float = 600) -> None:
    """apt-get install podman, runc and debootstrap unless they are already there."""
    try:
        ensure_binaries(PACKAGES, PACKAGES, timeout)
    except AptUnavailable as error:
        raise PodmanUnavailable(str(error)) from None


def apt_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this host's apt uses (deb822 ``URIs:`` or one-line ``deb`` entries)."""
    files = [*sorted(sources.glob("sources.list.d/*")), sources / "sources.list"]
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            found = re.match(r"\s*(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?(\s|$)", line)
            if found:
                return found.group(1)
    return DEFAULT_MIRROR


class Podman:
    """podman with a private config and storage root; ``timings`` records what each step took."""

    def __init__(self, workdir: Path | None = None):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="reprolm-podman-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "containers.conf").write_text(CONTAINERS_CONF)
        (self.workdir / "storage.conf").write_text(STORAGE_CONF.format(root=self.workdir))
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(self.workdir / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.workdir / "storage.conf"),
        }
        self.timings: dict[str, float] = {}

    def __call__(
        self, *args: str, timeout: float = 600, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, timeout=timeout, input=input
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"podman {' '.join(args[:3])} ... failed ({done.returncode}):\n"
                f"{done.stdout.decode(errors='replace')[-3000:]}\n"
                f"{done.stderr.decode(errors='replace')[-3000:]}"
            )
        return done

    def image_exists(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

    def ensure_base(self, name: str = BASE_IMAGE, mirror: str | None = None) -> None:
        """Make ``name`` from a minbase debootstrap of bookworm (once per storage root)."""
        if self.image_exists(name):
            return
        mirror = mirror or apt_mirror()
        rootfs = self.workdir / "rootfs"
        started = time.monotonic()
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap from {mirror} failed:\n{done.stdout[-3000:]}")
        self.timings["debootstrap_s"] = time.monotonic() - started
        # Like the registry image: no package cache, apt sources for main/updates/security.
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        security = mirror.rsplit("/", 1)[0] + "/debian-security"
        (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
            DEB822_SOURCES.format(mirror=mirror, security=security)
        )
        started = time.monotonic()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "-", name], stdin=tar.stdout, env=self.env,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"podman import {name} failed:\n{imported.stderr[-3000:]}")
        self.timings["import_s"] = time.monotonic() - started
        shutil.rmtree(rootfs)

    def wheelhouse(self, family: str) -> Path:
        """Wheels of ``containers/requirements/<family>.txt`` at the lock file's versions, fetched
        by the host's pip (its index, CA bundle and cache)."""
        wheels = self.workdir / "wheels"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
             "--dest", str(wheels), "-c", str(ROOT / "requirements.lock"),
             "-r", str(ROOT / "containers" / "requirements" / f"{family}.txt")],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pip download for the {family} image:\n{done.stderr[-3000:]}")
        self.timings[f"wheelhouse_{family}_s"] = time.monotonic() - started
        return wheels

    def build(self, family: str, tag: str) -> dict[str, object]:
        """Build ``family``'s image (containers/Dockerfile) as ``tag``; returns id, digest and
        size."""
        args = [f"--build-arg={k}={v}" for k, v in build_args(family).items()]
        self.ensure_base()
        wheels = self.wheelhouse(family)
        pip_conf = self.workdir / "build-pip.conf"
        pip_conf.write_text(BUILD_PIP_CONF)
        started = time.monotonic()
        self(
            "build", "--pull=never", "--network=host", "--layers",
            "--volume", f"{wheels}:/wheels:ro", "--volume", f"{pip_conf}:/etc/pip.conf:ro",
            *args, "-f", str(ROOT / DOCKERFILE), "-t", tag, str(ROOT),
            timeout=1200,
        )  # fmt: skip
        self.timings[f"build_{family}_s"] = time.monotonic() - started
        return self.inspect(tag)

    def inspect(self, tag: str) -> dict[str, object]:
        """Image id, manifest digest, size (bytes), user and labels of a local image."""
        info = json.loads(self("image", "inspect", tag).stdout)[0]
        return {
            "id": info["Id"],
            "digest": info["Digest"],
            "size": info["Size"],
            "user": info["Config"].get("User", ""),
            "labels": info.get("Labels") or {},
            "history": [step.get("created_by", "") for step in info.get("History", [])],
        }

    def close(self) -> None:
        """Remove every container and image of the private storage root, then the root."""
        self("rm", "--all", "--force", check=False, timeout=120)
        self("system", "reset", "--force", check=False, timeout=300)
        shutil.rmtree(self.workdir, ignore_errors=True)


if __name__ == "__main__":
    ensure_packages()
    podman = Podman()
    try:
        family = sys.argv[1] if len(sys.argv) > 1 else "data"
        print(json.dumps(podman.build(family, f"localhost/reprolm-{family}:dev"), indent=1)[:2000])
        print(json.dumps(podman.timings, indent=1))
    finally:
        podman.close()
