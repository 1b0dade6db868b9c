"""The run report's pages and figures (reprolm.htmlreport) from a small artifact tree on disk."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reprolm.hashing import MANIFEST_NAME
from reprolm.htmlreport import OUTPUTS, ReportInputError, curves, load_run, write_report
from reprolm.htmlreport.__main__ import main
from reprolm.manifest import build_manifest, verify_payload

SPEC_HASH = "ab12cd34" + "0" * 56
SVG = "{http://www.w3.org/2000/svg}"
# A reference a browser would follow out of the file (local "#id" references are fine).
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?!#)[^"'\s>]|url\(\s*["']?(?!#)|@import""")


def _fingerprint(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def make_artifact(root, stage, label, files, inputs=(), execution=None):
    """Write ``artifacts/<stage>/<label>-<fp>/`` with ``files`` (relpath -> JSON value) and a
    manifest whose ``inputs`` link to the given artifacts (name -> directory)."""
    fingerprint = _fingerprint(f"{stage}/{label}")
    directory = root / "artifacts" / stage / f"{label}-{fingerprint}"
    for rel, value in files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        text = value if isinstance(value, str) else json.dumps(value)  # str: the file's text
        (directory / rel).write_text(text, encoding="utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    records = {}
    for name, upstream in dict(inputs).items():
        manifest = json.loads((upstream / MANIFEST_NAME).read_text())
        records[name] = {
            "path": upstream.relative_to(root).as_posix(),
            "stage": manifest["stage"],
            "fingerprint": manifest["fingerprint"],
            "digest": manifest["digest"],
        }
    manifest = build_manifest(
        stage=stage, label=label, fingerprint=fingerprint, config={}, inputs=records,
        payload_dir=directory, code={}, environment={}, reproducibility={}, metrics={},
        execution=execution or {"wall_seconds": 2.5, "cpu_seconds": 1.25, "peak_rss_mb": 321.0,
                                "host": "node7", "started": "2026-01-01T00:00:00+00:00"},
    )  # fmt: skip
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def _history(key: str, values: list[float]) -> list[dict]:
    return [
        {"step": i + 1, key: v, "learning_rate": 0.001 / (i + 1), "grad_norm": 1.0 + i}
        for i, v in enumerate(values)
    ] + [{"step": len(values), "train_loss": 9.9}]  # a summary entry without the key


def _evaluate(root, checkpoint, model, world, curate, score):
    spec = {
        "schema": "reprolm.eval.result/1", "kind": "gsm8k", "task_id": "gsm8k:cot::tulu",
        "primary_metric": "exact_match", "primary": score, "metrics": {"exact_match": score},
        "instances": 8, "spec_hash": SPEC_HASH,
        "decontamination": {"contamination": 0.125, "flagged": 1, "instances": 8},
    }  # fmt: skip
    results = {
        "checkpoint": checkpoint,
        "tasks": {"arith_mc": {"acc": 0.5}},
        "instances": {"arith_mc": 20},
        "task_types": {"gsm8k:cot::tulu": "spec"},
    }
    files = {"results.json": results, "specs/gsm8k_cot__tulu/result.json": spec}
    inputs = {"model": model, "world": world, "curate": curate}
    return make_artifact(root, "evaluate", checkpoint, files, inputs)


def build_tree(root: Path) -> tuple[Path, list[Path]]:
    """A finished run's artifacts under ``root``: world, curate, the four training stages, two
    evaluations and a release."""
    world = make_artifact(root, "world", "world", {"index.json": {"tasks": ["arith_mc"]}})
    decon = {
        "ngram": 8, "threshold": 0.5,
        "eval_sets": {"arith_mc": {"instances": 20, "flagged": 1, "contamination": 0.05}},
        "spec_sets": {"gsm8k": {"instances": 8, "flagged": 0, "contamination": 0.0}},
        "removed_per_eval_set": {"arith_mc": {"pretrain": 3, "sft": 1}},
    }  # fmt: skip
    curation = {
        "pretrain": {"documents_in": 274, "exact_duplicate": 2, "decontaminated": 3,
                     "documents_out": 269},
        "fuzzy_clusters": 10,
    }  # fmt: skip
    curate = make_artifact(
        root, "curate", "curate",
        {"decontamination.json": decon, "curation.json": curation}, {"world": world},
    )  # fmt: skip
    pretrain = make_artifact(
        root, "pretrain", "pretrain",
        {"training/log_history.json": _history("loss", [6.0, 5.0, 4.0])}, {"curate": curate},
    )  # fmt: skip
    sft = make_artifact(
        root, "sft", "sft", {"training/log_history.json": _history("loss", [3.0, 2.0])},
        {"model": pretrain},
    )  # fmt: skip
    dpo_log = [
        {"step": 1, "loss": 0.69, "rewards/margins": 0.1, "learning_rate": 1e-4, "grad_norm": 2},
        {"step": 2, "loss": 0.5, "rewards/margins": 0.75, "learning_rate": 5e-5, "grad_norm": 1},
    ]
    dpo = make_artifact(root, "dpo", "dpo", {"training/log_history.json": dpo_log}, {"model": sft})
    rlvr_log = [{"step": 1, "loss": 0.0, "reward": 0.25, "kl": 0.0},
                {"step": 2, "loss": 0.0, "reward": 0.5, "kl": 0.02}]  # fmt: skip
    rollouts = [
        {"step": step, "verifier": verifier, "reward": reward}
        for step, verifier, reward in ((1, "lowercase", 0.0), (1, "lowercase", 1.0),
                                       (1, "numeric_answer", 0.0), (2, "numeric_answer", 1.0))
    ]  # fmt: skip
    rollouts_text = "".join(json.dumps(row) + "\n" for row in rollouts)
    rlvr = make_artifact(
        root, "rlvr", "rlvr",
        {"training/log_history.json": rlvr_log, "training/rollouts.jsonl": rollouts_text},
        {"model": dpo},
    )  # fmt: skip
    evals = {
        "pretrain": _evaluate(root, "pretrain", pretrain, world, curate, 0.25),
        "sft": _evaluate(root, "sft", sft, world, curate, 0.375),
    }
    release_inputs = {"model": rlvr, **{f"eval_{k}": v for k, v in evals.items()}}
    release = make_artifact(root, "release", "release", {"card.json": {}}, release_inputs)
    artifacts = [world, curate, pretrain, sft, dpo, rlvr, *evals.values(), release]
    return root, artifacts


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """One tree and its pages for the read-only tests (drawing costs a second or two)."""
    return build_tree(tmp_path_factory.mktemp("tree") / "run")


@pytest.fixture(scope="module")
def pages(tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages")
    write_report(load_run(tree[1], "unit"), out)
    return out


def test_writes_every_page_deterministically_and_changes_no_payload(tree, pages, tmp_path):
    _, artifacts = tree
    first = write_report(load_run(artifacts, "unit"), tmp_path / "again")
    assert [p.name for p in first] == list(OUTPUTS)
    for path in first:
        assert path.read_bytes() == (pages / path.name).read_bytes(), path.name
    for artifact in artifacts:
        assert verify_payload(artifact) == [], artifact
    for path in first:  # self-contained: nothing is fetched from anywhere
        text = path.read_text(encoding="utf-8")
        assert not EXTERNAL.findall(text), path.name


def test_eval_table_has_spec_hashes_and_contamination_beside_each_score(pages):
    page = (pages / "eval_table.html").read_text(encoding="utf-8")
    header = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert header.index("pretrain") < header.index("sft")  # checkpoints in pipeline order
    gsm8k = page.split("<td>gsm8k:cot::tulu</td>", 1)[1].split("</tr>", 1)[0]
    assert SPEC_HASH[:8] in gsm8k and f'title="{SPEC_HASH}"' in gsm8k
    assert '<span class="score">0.250</span>' in gsm8k
    assert '<span class="score">0.375</span>' in gsm8k
    assert gsm8k.count("contam. 12.5% (1/8)") == 2  # beside each checkpoint's score
    # The world eval set's figure comes from the curate artifact (evaluate records none).
    arith = page.split("<td>arith_mc</td>", 1)[1].split("</tr>", 1)[0]
    assert arith.count("contam. 5.0% (1/20)") == 2 and "world set" in arith
    landing = (pages / "landing.html").read_text(encoding="utf-8")
    assert landing.startswith("<style>") and "<html" not in landing  # a fragment
    assert '<span class="score">0.375</span>' in landing


def test_training_curves_show_every_signal_of_every_stage(tree, pages):
    _, artifacts = tree
    run = load_run(artifacts, "unit")
    drawn = curves.curves(run)
    assert sorted(drawn["loss"]) == ["dpo", "pretrain", "rlvr", "sft"]
    assert drawn["loss"]["pretrain"] == ([1.0, 2.0, 3.0], [6.0, 5.0, 4.0])
    assert list(drawn["DPO reward margin"]) == ["dpo"]
    assert drawn["DPO reward margin"]["dpo"][1] == [0.1, 0.75]
    assert drawn["RLVR reward"]["rlvr"][1] == [0.25, 0.5]
    assert drawn["RLVR KL"] == {"rlvr": ([1.0, 2.0], [0.0, 0.02])}
    assert curves.verifier_rewards(run) == {
        "lowercase": ([1.0], [0.5]),
        "numeric_answer": ([1.0, 2.0], [0.0, 1.0]),
    }
    assert sorted(drawn["grad norm"]) == ["dpo", "pretrain", "sft"]  # rlvr logged none
    svg = (pages / "training_curves.svg").read_text(encoding="utf-8")
    root = ET.fromstring(svg)  # well-formed SVG, text kept as text
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"loss", "learning rate", "grad norm", "DPO reward margin", "RLVR reward"} <= texts
    assert {"RLVR KL", curves.VERIFIER_PANEL, "lowercase", "numeric_answer"} <= texts
    assert "Date" not in svg


def test_an_moe_run_adds_expert_load_panels(tmp_path):
    """router_stats.jsonl of the pretrain artifact: imbalance and entropy per layer, layer 0's
    shares stacked; a dense run draws none of them."""
    rows = [
        {"step": s, "layers": [{"layer": i, "tokens": tokens, "entropy": 1.2 - 0.1 * s}
                               for i in range(2)]}
        for s, tokens in ((2, [10, 20, 30, 40]), (4, [25, 25, 25, 25]))
    ]  # fmt: skip
    text = "".join(json.dumps(row) + "\n" for row in rows)
    files = {"training/log_history.json": _history("loss", [6.0, 5.0]),
             "training/router_stats.jsonl": text}  # fmt: skip
    pretrain = make_artifact(tmp_path, "pretrain", "pretrain", files)
    run = load_run([pretrain], "moe")
    drawn = curves.expert_load(run)
    assert list(drawn) == list(curves.EXPERT_PANELS)
    assert drawn[curves.EXPERT_PANELS[0]]["layer 1"] == ([2.0, 4.0], [1.6, 1.0])
    assert drawn[curves.EXPERT_PANELS[1]]["layer 0"][1] == pytest.approx([1.0, 0.8])
    stacked = drawn[curves.EXPERT_PANELS[2]]
    assert stacked["expert 1"][1] == pytest.approx([0.3, 0.5])
    assert stacked["expert 3"][1] == pytest.approx([1.0, 1.0])
    svg = curves.svg(run)
    texts = {t.text for t in ET.fromstring(svg).iter(f"{SVG}text")}
    assert set(curves.EXPERT_PANELS) <= texts
    assert svg == curves.svg(load_run([pretrain], "moe"))  # the same bytes again
    (pretrain / "training/router_stats.jsonl").write_text("{bad\n", encoding="utf-8")
    with pytest.raises(ReportInputError, match=r"router_stats\.jsonl:1: not valid JSON"):
        curves.expert_load(run)


def test_dense_runs_draw_no_expert_load(tree):
    assert curves.expert_load(load_run(tree[1], "unit")) == {}


def test_decontamination_and_jobs_pages(tree, pages):
    _, artifacts = tree
    decon = (pages / "decontamination.html").read_text(encoding="utf-8")
    row = decon.split("<td>arith_mc</td>", 1)[1].split("</tr>", 1)[0]
    assert ">20<" in row and ">1<" in row and "5.0%" in row and "pretrain: 3, sft: 1" in row
    assert "8-gram" in decon
    kinds = decon.split("Documents per data kind", 1)[1]
    assert ">274<" in kinds and ">269<" in kinds and "fuzzy_clusters" not in kinds
    jobs = (pages / "jobs.html").read_text(encoding="utf-8")
    assert jobs.count("<tr>") == len(artifacts) + 1  # header + one row per job
    assert jobs.index(">rlvr<") < jobs.index("evaluate/pretrain") < jobs.index("evaluate/sft")
    assert "evaluate/sft" in jobs and ">2.5<" in jobs and ">1.2<" in jobs and ">321<" in jobs
    assert f"Total: {2.5 * len(artifacts):,.1f} s wall" in jobs


def test_lineage_graph_has_every_artifact_and_link(tree, pages):
    _, artifacts = tree
    root = ET.fromstring((pages / "lineage.svg").read_text(encoding="utf-8"))
    titles = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g")]
    assert len(titles) == len(artifacts)
    for artifact in artifacts:
        stage, name = artifact.parent.name, artifact.name
        assert any(t.startswith(f"{stage}/{name}") for t in titles), name
    links = sum(len(json.loads((a / MANIFEST_NAME).read_text())["inputs"]) for a in artifacts)
    assert len([p for p in root.iter(f"{SVG}path") if p.get("marker-end")]) == links
    boxes = {
        g.find(f"{SVG}title").text.split("-")[0]: float(g.find(f"{SVG}rect").get("x"))
        for g in root.iter(f"{SVG}g")
    }
    assert boxes["world/world"] < boxes["curate/curate"] < boxes["release/release"]


def test_before_a_release_the_pages_say_what_is_missing(tmp_path):
    world = make_artifact(tmp_path, "world", "world", {"index.json": {}})
    write_report(load_run([world], "unit"), tmp_path / "out")
    assert "No evaluation has finished" in (tmp_path / "out/eval_table.html").read_text()
    assert "No release has finished" in (tmp_path / "out/lineage.svg").read_text()
    assert "No curate artifact" in (tmp_path / "out/decontamination.html").read_text()


def test_payload_files_of_another_shape_show_nothing_rather_than_fail(tmp_path):
    _, artifacts = build_tree(tmp_path / "run")
    curate = next(a for a in artifacts if a.parent.name == "curate")
    (curate / "decontamination.json").write_text('{"eval_sets": [1], "removed_per_eval_set": 2}')
    (curate / "curation.json").write_text("[]")
    write_report(load_run(artifacts, "unit"), tmp_path / "out")
    decon = (tmp_path / "out/decontamination.html").read_text(encoding="utf-8")
    assert "<td>arith_mc</td>" not in decon and "Eval sets" in decon
    assert "contam. –" in (tmp_path / "out/eval_table.html").read_text(encoding="utf-8")


def test_bad_inputs_exit_2_naming_the_file(tmp_path, capsys):
    _, artifacts = build_tree(tmp_path / "run")
    history = next(a for a in artifacts if a.parent.name == "sft") / "training/log_history.json"
    history.write_bytes(b'[{"loss": 1.0, "loss": 2.0}]')
    assert main(["--name", "x", "--output", str(tmp_path / "o"), *map(str, artifacts)]) == 2
    err = capsys.readouterr().err
    assert str(history) in err and "twice" in err and "Traceback" not in err
    history.write_text("[]", encoding="utf-8")
    results = next(a for a in artifacts if a.parent.name == "evaluate") / "results.json"
    results.write_text('{"checkpoint": "pretrain", "tasks": {"arith_mc": {"acc": ', "utf-8")
    assert main(["--name", "x", "--output", str(tmp_path / "o"), *map(str, artifacts)]) == 2
    err = capsys.readouterr().err
    assert str(results) in err and "not valid JSON" in err and "Traceback" not in err
    missing = tmp_path / "artifacts" / "sft" / "sft-000000000000"
    assert main(["--name", "x", "--output", str(tmp_path / "o"), str(missing)]) == 2
    assert "no manifest" in capsys.readouterr().err
    with pytest.raises(ReportInputError, match=r"provenance\.json"):
        broken = artifacts[0] / MANIFEST_NAME
        broken.write_text("{", encoding="utf-8")
        load_run([artifacts[0]], "x")
