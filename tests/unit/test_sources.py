"""Plan-time source checks (reprolm/sources.py) and the recipe's `sources` key."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from reprolm.recipe import RecipeError, load_recipe
from reprolm.sources import SourceError, check_sources, resolve

ROOT = Path(__file__).resolve().parents[2]
GSM8K = ROOT / "tests" / "fixtures" / "sources" / "gsm8k_test20.jsonl"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """web/ with a plain and a .gz jsonl, a parquet-named file and a fake hf_disk dir."""
    web = tmp_path / "web"
    (web / "part").mkdir(parents=True)
    shutil.copy(GSM8K, web / "a.jsonl")
    (web / "part" / "b.jsonl.gz").write_bytes(gzip.compress(GSM8K.read_bytes()))
    (tmp_path / "code.parquet").write_bytes(b"PAR1....PAR1")
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki" / "state.json").write_text("{}")
    return tmp_path


def entries(corpus: Path) -> dict:
    return {
        "pretrain": [
            {"name": "web", "path": str(corpus / "web"), "format": "jsonl"},
            {"name": "code", "path": str(corpus / "*.parquet"), "format": "parquet"},
            {"name": "wiki", "path": str(corpus / "wiki"), "format": "hf_disk"},
        ],
        "sft": [{"name": "web", "path": str(corpus / "web" / "**" / "*.gz"), "format": "jsonl"}],
    }


def test_good_sources_pass(corpus: Path) -> None:
    check_sources(entries(corpus))
    check_sources({})
    check_sources(None)


def fails(sources: dict, *fragments: str) -> None:
    with pytest.raises(SourceError) as caught:
        check_sources(sources)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_missing_path_names_the_entry(corpus: Path) -> None:
    sources = entries(corpus)
    sources["pretrain"][1]["path"] = str(corpus / "nothing" / "*.parquet")
    fails(sources, "sources.pretrain[1] (code): ", "matches no parquet input")


def test_wrong_format_names_the_entry(corpus: Path) -> None:
    (corpus / "code.parquet").write_bytes(b'{"text": "jsonl really"}\n')
    (corpus / "wiki" / "state.json").unlink()
    (corpus / "web" / "part" / "b.jsonl.gz").write_bytes(b"plain text")
    with pytest.raises(SourceError) as caught:
        check_sources(entries(corpus))
    lines = str(caught.value).splitlines()
    assert len(lines) == 4  # every bad entry, one line each (sft[0] reads the same .gz)
    assert (
        lines[0].startswith("sources.pretrain[0] (web): ")
        and "named .gz but not gzip data" in lines[0]
    )
    assert lines[1].startswith("sources.pretrain[1] (code): ")
    assert "not a parquet file (it does not start with PAR1)" in lines[1]
    assert lines[2].startswith("sources.pretrain[2] (wiki): ") and "save_to_disk" in lines[2]
    assert lines[3].startswith("sources.sft[0] (web): ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_names_the_entry(corpus: Path) -> None:
    (corpus / "web" / "a.jsonl").chmod(0)
    fails(entries(corpus), "sources.pretrain[0] (web): ", "not readable (permission denied)")


def test_unreadable_file_names_the_entry_via_access(corpus: Path, monkeypatch) -> None:
    target = str((corpus / "web" / "a.jsonl").resolve())
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: str(p) != target and real(p, mode))
    fails(entries(corpus), "sources.pretrain[0] (web): ", f"{target}: not readable")


def test_duplicate_name_within_a_kind(corpus: Path) -> None:
    sources = entries(corpus)
    sources["pretrain"][2]["name"] = "web"
    fails(sources, "sources.pretrain[2] (web): ", "used by sources.pretrain[0] too")


def test_check_reads_only_the_first_bytes(corpus: Path, monkeypatch) -> None:
    import builtins

    reads: list[int] = []
    real_open = builtins.open

    class Spy:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            reads.append(size)
            return self.handle.read(size)

    monkeypatch.setattr(builtins, "open", lambda *a, **k: Spy(real_open(*a, **k)))
    check_sources(entries(corpus))
    assert reads and all(0 < size <= 4 for size in reads)


def test_platform_and_job_code_resolve_alike(corpus: Path) -> None:
    from stages.source.files import resolve_files

    for kind in entries(corpus).values():
        for entry in kind:
            assert resolve(entry["path"], entry["format"]) == resolve_files(
                entry["path"], entry["format"]
            )


def test_recipe_accepts_sources_and_names_bad_keys(corpus: Path) -> None:
    recipe = {"name": "own", "sources": entries(corpus)}
    assert load_recipe(recipe)["sources"]["pretrain"][0]["name"] == "web"
    assert "sources" not in load_recipe({"name": "tiny"})
    bad = {
        "name": "own",
        "sources": {
            "pretrain": [{"name": "a b", "path": "/x", "format": "csv", "weight": 0, "colour": 1}],
            "music": [],
        },
    }
    with pytest.raises(RecipeError) as caught:
        load_recipe(bad)
    message = str(caught.value)
    for fragment in (
        "sources.music: unknown key",
        "sources.pretrain[0].colour: unknown key",
        "sources.pretrain[0].format",
        "sources.pretrain[0].name",
        "sources.pretrain[0].weight",
    ):
        assert fragment in message
    with pytest.raises(RecipeError, match=r"sources.sft\[0\]: 'path' is a required property"):
        load_recipe({"name": "own", "sources": {"sft": [{"name": "a", "format": "jsonl"}]}})
