"""Property: whatever a recipe file holds, `reprolm plan` plans it (exit 0) or refuses it (exit
2) naming the file, and the key path where the fault is in the values, quickly; never a
traceback (any other exception escapes ``main`` and fails the test) and never a hang.

Mutations of config/micro.yaml: a key deleted, a value replaced by any YAML value (NaN,
infinities, huge integers, dates, nested maps and lists), random bytes written over its text,
a YAML snippet (anchors, aliases, tags, flow collections) inserted.
"""

from __future__ import annotations

import datetime
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reprolm.cli import main

ROOT = Path(__file__).resolve().parents[2]
MICRO_TEXT = (ROOT / "config" / "micro.yaml").read_text()
MICRO = yaml.safe_load(MICRO_TEXT)
SECONDS_PER_PLAN = 10  # a plan of micro takes ~0.1 s; a hang or a blow-up takes far longer
FUZZ = settings(
    max_examples=400,  # ~30 s
    deadline=None,  # timed below, per plan, with a bound that tolerates a loaded CI machine
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def key_paths(value: Any, parts: tuple = ()) -> list[tuple]:
    """Every key path of a recipe (maps and lists), shallowest first."""
    paths = [parts] if parts else []
    if isinstance(value, dict):
        for key, sub in value.items():
            paths += key_paths(sub, (*parts, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            paths += key_paths(sub, (*parts, index))
    return paths


PATHS = key_paths(MICRO)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(["", ".", "/", "..", "arith_gen", "1e-3", "-.inf", "*", "~"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers() | st.dates(), inner, max_size=4)
    ),
    max_leaves=12,
)
SNIPPETS = st.sampled_from(
    [
        "x: &a [1, 2]\ny: *a\n",
        "evaluate: {tasks: *nope}\n",
        "seed: !!binary AAAA\n",
        "seed: !!python/object/apply:os.getpid []\n",
        "? [a, b]\n: 1\n",
        "<<: {seed: 3}\n",
        "world: {people: 12, people: 13}\n",
        "pretrain: &p {steps: 1}\nsft: *p\n",
        "\t- tab\n",
        'name: "unterminated\n',
        "%YAML 1.1\n---\n",
        "---\n",
        "\ufeffname: bom\n",
    ]
)


def set_path(recipe: dict, path: tuple, value: Any, delete: bool) -> None:
    target = recipe
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value


@st.composite
def mutated(draw) -> tuple[bytes, tuple | None]:
    """(file bytes, key path mutated when the mutation is one of values, else None)."""
    kind = draw(st.sampled_from(["delete", "replace", "bytes", "snippet"]))
    if kind in ("delete", "replace"):
        recipe = yaml.safe_load(MICRO_TEXT)
        path = draw(st.sampled_from(PATHS))
        set_path(recipe, path, draw(VALUES) if kind == "replace" else None, kind == "delete")
        return yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).encode(), path
    data = bytearray(MICRO_TEXT.encode())
    at = draw(st.integers(min_value=0, max_value=len(data)))
    if kind == "bytes":
        data[at : at + 8] = draw(st.binary(min_size=1, max_size=8))
    else:
        line = MICRO_TEXT.count("\n", 0, at)
        lines = MICRO_TEXT.splitlines(keepends=True)
        lines.insert(line, draw(SNIPPETS))
        data = bytearray("".join(lines).encode())
    return bytes(data), None


def plan(recipe: Path, capsys) -> tuple[int, str]:
    started = time.monotonic()
    with pytest.raises(SystemExit) as done:
        main(["plan", "--recipe", str(recipe), "--json"])
    elapsed = time.monotonic() - started
    assert elapsed < SECONDS_PER_PLAN, f"planning took {elapsed:.1f} s"
    return done.value.code, capsys.readouterr().err


def _named(part: Any) -> str:
    return part.isoformat() if isinstance(part, datetime.date) else str(part)


@pytest.mark.slow
@FUZZ
@given(case=mutated())
def test_any_mutation_plans_or_is_refused_naming_the_file_and_key(case, tmp_path, capsys):
    data, path = case
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(data)
    code, err = plan(recipe, capsys)
    assert code in (0, 2), err
    if code == 0:
        return
    assert "Traceback" not in err
    assert err.startswith(f"reprolm plan: {recipe}"), err  # the file, first
    if path is not None:  # a value changed: some key path is named, near the one changed
        named = re.search(r"(<top level>|\b[a-z_]+(\.[\w:.-]+|\[\d+\])*)[:=]", err)
        assert named, err
        assert "<top level>" in err or any(_named(part) in err for part in path[:1]), err
