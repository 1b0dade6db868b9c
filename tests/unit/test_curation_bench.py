"""The curation benchmark's generated data and measurement grid (benchmarks/curation*.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import curation  # noqa: E402
import curation_data  # noqa: E402


def test_corpus_is_seeded_and_prefix_stable(tmp_path: Path) -> None:
    instances = curation_data.eval_set(300, seed=3)
    small, _ = curation_data.write_corpus(tmp_path / "a", 1, 1, instances, seed=3)
    large, plants = curation_data.write_corpus(tmp_path / "b", 2, 1, instances, seed=3)
    assert Path(small[0]["path"]).read_bytes() == Path(large[0]["path"]).read_bytes()
    assert len(large) == 2 and all(f["text_bytes"] >= curation_data.MIB for f in large)
    docs = sum(f["docs"] for f in large)
    assert 0.03 < len(plants.near_duplicates) / docs < 0.07
    assert 0.02 < len(plants.low_quality) / docs < 0.04
    assert plants.eval_items and all(int(u.split("-")[1]) < 200 for u in plants.eval_items.values())
    assert all(source < copy for copy, source in plants.near_duplicates.items())
    texts = [t for _, t in curation_data.read_texts([f["path"] for f in large])]
    assert len(texts) == docs
    line = Path(large[0]["path"]).read_text().splitlines()[0]
    assert set(json.loads(line)) == {"id", "text"}


def test_eval_sets_are_prefixes_with_question_and_answer() -> None:
    small, large = curation_data.eval_set(50, 0), curation_data.eval_set(120, 0)
    assert large[:50] == small and len({uid for uid, _ in large}) == 120
    question, answer = large[0][1]
    assert question.endswith("?") and "####" in answer


def test_planted_eval_items_contain_instance_text(tmp_path: Path) -> None:
    instances = curation_data.eval_set(200, seed=1)
    files, plants = curation_data.write_corpus(tmp_path, 2, 2, instances, seed=1)
    texts = dict(curation_data.read_texts([files[0]["path"]]))
    by_id = dict(instances)
    assert len(plants.eval_items) >= 3
    for doc, uid in plants.eval_items.items():
        wanted = re.findall(r"[a-z0-9]+", "\n".join(by_id[uid]).lower())
        present = set(re.findall(r"[a-z0-9]+", texts[doc].lower()))
        assert sum(w in present for w in wanted) >= len(wanted) - 1  # at most one word edited


def test_plan_covers_both_sweeps_and_restricts_baselines() -> None:
    args = curation.parse_args(
        ["--sizes-mb", "16", "32", "64", "--instances", "10", "20", "40",
         "--split-sizes-mb", "16", "64", "--datatrove-sizes-mb", "16",
         "--filters-sizes-mb", "16", "--eval-scaling-mb", "16",
         "--eval-scaling-impls", "ours", "datatrove_split"]
    )  # fmt: skip
    runs = curation.plan(args)
    keys = {(r["component"], r["impl"], r["size_mb"], r["instances"]) for r in runs}
    assert len(keys) == len(runs)
    assert {k[2] for k in keys if k[:2] == ("minhash", "ours")} == {16, 32, 64}
    assert {k[2] for k in keys if k[:2] == ("minhash", "datatrove_split")} == {16, 64}
    assert {k[2] for k in keys if k[1] == "datatrove"} == {16}
    assert {k[2] for k in keys if k[0] == "filters"} == {16}
    assert not {k for k in keys if k[1] == "datatrove_split" and k[0] in ("read", "filters")}
    decont_ours = {(k[2], k[3]) for k in keys if k[:2] == ("decont", "ours")}
    assert decont_ours == {(16, 20), (32, 20), (64, 20), (16, 10), (16, 40)}
    assert {k[3] for k in keys if k[:2] == ("decont", "datatrove")} == {20}
    assert curation.all_sizes(args) == [16, 32, 64]


def test_cpu_seconds_resolves_below_a_clock_tick() -> None:
    """CI once measured 0 CPU seconds for a fast read (os.times counts 10 ms ticks)."""
    before = curation_data.cpu_seconds()
    total = 0
    for value in range(20_000):  # ~1 ms of work
        total += value * value
    assert 0 < curation_data.cpu_seconds() - before < 1, total


def test_summary_line_prints_a_missing_rate() -> None:
    result = {"component": "read", "impl": "ours", "size_mb": 4, "instances": 0,
              "mb_per_cpu_s": None, "wall_s": 0.004, "peak_rss_mb": 70.0}  # fmt: skip
    line = curation.summary_line(result)
    assert "n/a MB/cpu-s" in line and line.startswith("read")
    assert "2.50 MB/cpu-s" in curation.summary_line({**result, "mb_per_cpu_s": 2.5})
