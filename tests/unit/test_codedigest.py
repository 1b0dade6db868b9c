"""A stage's code digest covers every job-code module it imports, and no platform module."""

from __future__ import annotations

from pathlib import Path

from reprolm.codedigest import (
    CODE_ROOT,
    JOB_SAFE_PLATFORM_MODULES,
    PAYLOAD_PLATFORM_MODULES,
    _imported_names,
    changed_sources,
    code_record,
    job_packages,
    stage_source_paths,
)


def make_tree(root: Path) -> Path:
    files = {
        "reprolm/__init__.py": "",
        "reprolm/helper.py": "X = 1\n",
        "stages/__init__.py": "",
        "stages/a/__init__.py": "",
        "stages/a/stage.py": "from evals.metric import score\nfrom reprolm.helper import X\n"
        "from . import local\n",
        "stages/a/local.py": "",
        "stages/b/__init__.py": "",
        "stages/b/stage.py": "import stages.common.util\n",
        "stages/common/__init__.py": "",
        "stages/common/util.py": "",
        "evals/__init__.py": "",
        "evals/metric.py": "from .rules import rule\n\ndef score(): return rule()\n",
        "evals/rules.py": "def rule(): return 1\n",
        "evals/unused.py": "",
        "evals/data/pool.jsonl": "{}\n",
        "tests/__init__.py": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_imports_outside_the_platform_are_followed_transitively(tmp_path):
    root = make_tree(tmp_path)
    assert stage_source_paths("a", root) == [
        "evals/__init__.py",
        "evals/data/pool.jsonl",
        "evals/metric.py",
        "evals/rules.py",
        "stages/__init__.py",
        "stages/a/__init__.py",
        "stages/a/local.py",
        "stages/a/stage.py",
    ]
    assert stage_source_paths("b", root) == [
        "stages/__init__.py",
        "stages/b/__init__.py",
        "stages/b/stage.py",
        "stages/common/__init__.py",
        "stages/common/util.py",
    ]


def test_an_edit_changes_exactly_the_importing_stages(tmp_path):
    root = make_tree(tmp_path)
    before = {s: code_record(s, root) for s in ("a", "b")}
    (root / "evals/rules.py").write_text("def rule(): return 2\n")
    (root / "reprolm/helper.py").write_text("X = 2\n")  # platform: never a trigger
    assert changed_sources(before["a"]["source_hashes"], "a", root) == ["evals/rules.py"]
    assert changed_sources(before["b"]["source_hashes"], "b", root) == []


def test_platform_modules_that_write_payload_bytes_are_code_of_the_job(tmp_path):
    root = make_tree(tmp_path)
    (root / "reprolm/canonical.py").write_text("def dump_json(x): return str(x)\n")
    (root / "stages/b/stage.py").write_text("from reprolm.canonical import dump_json\n")
    assert "reprolm/canonical.py" in stage_source_paths("b", root)
    assert "reprolm/helper.py" not in stage_source_paths("a", root)


def test_job_code_imports_only_the_allowed_platform_modules():
    """Job code never depends on a platform module for a payload byte unless the digest
    follows that module: any other ``reprolm`` import would escape the code digest."""
    allowed = PAYLOAD_PLATFORM_MODULES | JOB_SAFE_PLATFORM_MODULES
    found = {}
    for package in sorted(job_packages(CODE_ROOT)):
        for path in (CODE_ROOT / package).rglob("*.py"):
            for name in _imported_names(path, CODE_ROOT):
                module = ".".join(name.split(".")[:2])
                if name.startswith("reprolm.") and module not in allowed:
                    found.setdefault(module, path.relative_to(CODE_ROOT).as_posix())
    assert found == {}
