"""Session-scoped micro artifacts of the data stages, built once for every stage test.

``world_artifact`` -> ``curate_artifact`` -> ``tokenize_artifact``: directories laid out as in
docs/artifacts.md (no provenance.json: that is the runner's job). Treat them as read-only.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.stages.micro import MICRO_CONFIGS, run_stage


@pytest.fixture(scope="session")
def world_artifact(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("world") / "artifact"
    run_stage("world", MICRO_CONFIGS["world"], {}, out)
    return out


@pytest.fixture(scope="session")
def curate_artifact(
    tmp_path_factory: pytest.TempPathFactory, world_artifact: pathlib.Path
) -> pathlib.Path:
    out = tmp_path_factory.mktemp("curate") / "artifact"
    run_stage("curate", MICRO_CONFIGS["curate"], {"world": world_artifact}, out)
    return out


@pytest.fixture(scope="session")
def tokenize_artifact(
    tmp_path_factory: pytest.TempPathFactory, curate_artifact: pathlib.Path
) -> pathlib.Path:
    out = tmp_path_factory.mktemp("tokenize") / "artifact"
    run_stage("tokenize", MICRO_CONFIGS["tokenize"], {"curate": curate_artifact}, out)
    return out
