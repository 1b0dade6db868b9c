"""Container images per stage: the recipe's ``containers`` block, and the image a job runs in.

The recipe names images by digest per image family (``data``, ``train``, ``eval``) or per stage
(a stage key wins over its family). Like ``resources``, images are no part of any stage config or
fingerprint: they change where a job runs, not what it produces (the container test checks that
a job gives the host's digest inside the data image).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolm import stagetable

# Image family -> stages whose jobs run in it: the stage table's `image` (reprolm/stagetable.py).
IMAGE_FAMILIES: dict[str, tuple[str, ...]] = stagetable.families("image")
# One Dockerfile builds every family's image; the family picks containers/requirements/<family>.txt.
DOCKERFILE = "containers/Dockerfile"
# The interpreter every reprolm image provides (the Dockerfiles' venv): absolute, so no container
# runtime's PATH handling can swap it for another python.
IMAGE_PYTHON = "/opt/venv/bin/python"
# Set by the launcher (the Snakemake rule) to the reference it ran: manifests record it.
IMAGE_VARIABLE = "REPROLM_IMAGE"
# Set by every reprolm image (its Dockerfile's ENV): a job inside one knows it even when the
# runtime tells nothing (docker).
FAMILY_VARIABLE = "REPROLM_IMAGE_FAMILY"
DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")
PODMAN_CONTAINERENV = Path("/run/.containerenv")


def build_args(family: str) -> dict[str, str]:
    """``--build-arg`` values of ``family``'s image: the family and (for its label) its stages."""
    if family not in IMAGE_FAMILIES:
        raise ValueError(f"no image family {family!r}; image families: {sorted(IMAGE_FAMILIES)}")
    return {"FAMILY": family, "STAGES": " ".join(IMAGE_FAMILIES[family])}


def image_family(stage: str) -> str:
    """The image family of ``stage``."""
    return stagetable.stage(stage).image


def stage_image(containers: Mapping[str, Any] | None, stage: str) -> str | None:
    """The image reference of ``stage``'s jobs: ``containers.<stage>`` when given (null: on the
    host), else its family's, else None (on the host)."""
    containers = containers or {}
    key = stage if stage in containers else image_family(stage)
    return containers.get(key) or None


def snakemake_image(reference: str) -> str:
    """The reference as Snakemake's ``container:`` wants it (a URI: ``docker://`` when bare)."""
    return reference if "://" in reference else f"docker://{reference}"


def split_reference(reference: str) -> tuple[str, str | None]:
    """``(name, digest)`` of ``[scheme://]name@sha256:<hex>``; digest None when not pinned."""
    reference = reference.split("://", 1)[-1]
    found = DIGEST.search(reference)
    if found is None:
        return reference, None
    return reference[: found.start()], found.group(1)


def _containerenv(path: Path) -> dict[str, str]:
    """``key="value"`` lines of podman's /run/.containerenv (empty when not readable)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def current_image(
    environ: Mapping[str, str] | None = None, containerenv: Path = PODMAN_CONTAINERENV
) -> dict[str, Any] | None:
    """The image this process runs in, or None on the host.

    ``image``/``digest`` come from ``REPROLM_IMAGE`` (set by the launcher to the recipe's
    by-digest reference); otherwise from what the runtime itself tells: podman writes the image
    name and id into /run/.containerenv, apptainer sets ``APPTAINER_CONTAINER`` (the image file)
    and ``APPTAINER_NAME``; our images set ``REPROLM_IMAGE_FAMILY``. ``image_id`` is podman's
    local id (the config's sha256), which is not the registry digest.
    """
    environ = os.environ if environ is None else environ
    reference = environ.get(IMAGE_VARIABLE, "").strip()
    podman = _containerenv(containerenv) if containerenv.is_file() else None
    apptainer = environ.get("APPTAINER_CONTAINER") or environ.get("SINGULARITY_CONTAINER")
    family = environ.get(FAMILY_VARIABLE)
    # /.dockerenv is not a sign: CI sandboxes are docker containers themselves.
    runtime = "podman" if podman is not None else "apptainer" if apptainer else None
    if not reference and runtime is None and not family:
        return None
    record: dict[str, Any] = {"runtime": runtime, "image": None, "digest": None}
    if family:
        record["family"] = family
    if reference:
        record["image"], record["digest"] = split_reference(reference)
    if podman is not None:
        record["image"] = record["image"] or podman.get("image") or None
        record["image_id"] = podman.get("imageid") or None
    if apptainer:
        record["image"] = record["image"] or environ.get("APPTAINER_NAME") or apptainer
        record["image_file"] = apptainer
    return record
