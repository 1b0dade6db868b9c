"""Property: whatever a manifest file holds, reading it either succeeds or raises ManifestError
naming the file; verify, the lineage walk and the PROV export never raise anything else.

Mutations of a real manifest (a world artifact and a curate-stage artifact built from it by
the runner): a field deleted, a value swapped for any JSON value, deep nesting, a huge
string, random bytes written over the file's text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reprolm import lineage, prov
from reprolm.fingerprint import fingerprint
from reprolm.hashing import MANIFEST_NAME, PayloadError
from reprolm.manifest import ManifestError, load_manifest, verify_payload
from reprolm.recipe import load_recipe, stage_config
from reprolm.runner import execute

LEVEL = {"level": "bitwise"}


def _write(config, inputs, output_dir, context):
    (output_dir / "data").mkdir()
    (output_dir / "data" / "rows.jsonl").write_text(f'{{"seed": {config["seed"]}}}\n')
    return {"count": 1}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> tuple[Path, Path]:
    """(world artifact, curate artifact reading it), made by the runner in a fresh tree."""
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("REPROLM_MLFLOW", "off")
        recipe = load_recipe({"name": "t", "threads": 1})
        world_config = stage_config(recipe, "world")
        world_fp = fingerprint("world", world_config, {})
        world = root / "artifacts" / "world" / f"world-{world_fp}"
        execute("world", _write, world_config, {}, world, reproducibility=LEVEL)
        config = stage_config(recipe, "curate")
        curate_fp = fingerprint("curate", config, {"world": world_fp})
        curate = root / "artifacts" / "curate" / f"curate-{curate_fp}"
        execute("curate", _write, config, {"world": world}, curate, reproducibility=LEVEL)
    return world, curate


def _paths(value, prefix=(), depth=0):
    """Every key path of nested mappings, down to three levels."""
    if isinstance(value, dict) and depth < 3:
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key), depth + 1)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=12,
)  # fmt: skip
ODD = st.sampled_from(["../../x", "/etc/passwd", "*", "", ".", "a" * 100_000, "\0", "-rf"])


@st.composite
def mutated(draw, manifest: dict) -> bytes:
    """One hostile variant of ``manifest``'s file bytes."""
    kind = draw(st.sampled_from(["delete", "replace", "odd", "deep", "bytes"]))
    value = json.loads(json.dumps(manifest))
    if kind == "bytes":
        text = bytearray(json.dumps(value).encode("utf-8"))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text) - 1))
            text[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        return bytes(text)
    path = draw(st.sampled_from(sorted(_paths(value))))
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if kind == "delete":
        del parent[path[-1]]
    elif kind == "replace":
        parent[path[-1]] = draw(JSON)
    elif kind == "odd":
        parent[path[-1]] = draw(ODD)
    else:
        depth = draw(st.sampled_from([63, 64, 65, 2_000, 200_000]))
        parent[path[-1]] = "@DEEP@"
        text = json.dumps(value).replace('"@DEEP@"', "[" * depth + "]" * depth)
        return text.encode("utf-8")
    return json.dumps(value).encode("utf-8")


def _exercise(world: Path, curate: Path, target: Path) -> None:
    path = target / MANIFEST_NAME
    try:
        load_manifest(path)
    except ManifestError as error:
        assert str(path) in str(error)
    try:
        verify_payload(target)
    except ManifestError as error:
        assert str(path) in str(error)
    except PayloadError:  # pragma: no cover - the payload is never touched here
        raise
    for top in (curate, world):
        graph = lineage.build(top)
        lineage.upstream_tree(graph)
        prov.export(graph)
        for message in graph.hostile():
            assert str(path) in message
    try:
        lineage.dependents(world)
    except ManifestError as error:
        assert str(path) in str(error)


@settings(max_examples=200, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])  # fmt: skip
@given(data=st.data(), which=st.sampled_from(["curate", "world"]))
def test_any_manifest_is_read_or_refused_with_manifest_error(artifacts, data, which):
    world, curate = artifacts
    target = curate if which == "curate" else world
    path = target / MANIFEST_NAME
    original = path.read_bytes()
    path.write_bytes(data.draw(mutated(json.loads(original))))
    try:
        _exercise(world, curate, target)
    finally:
        path.write_bytes(original)


def test_the_real_manifests_pass(artifacts):
    world, curate = artifacts
    for target in artifacts:
        assert load_manifest(target / MANIFEST_NAME)["stage"] in ("world", "curate")
    assert verify_payload(curate) == [] and lineage.build(curate).hostile() == []
    assert set(lineage.build(curate).nodes) == {
        f"curate/curate-{curate.name[-12:]}",
        f"world/world-{world.name[-12:]}",
    }
