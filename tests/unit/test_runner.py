"""The stage runner: fingerprint checks, atomic install, manifests, failures that lose nothing."""

import json
import os
import subprocess
import sys

import pytest

from reprolm.fingerprint import fingerprint
from reprolm.manifest import read_manifest, verify_payload
from reprolm.recipe import load_recipe, stage_config
from reprolm.runner import JobError, execute

LEVEL = {"level": "bitwise"}


@pytest.fixture
def world_config():
    return stage_config(load_recipe({"name": "t", "threads": 1}), "world")


def write_numbers(config, inputs, output_dir, context):
    (output_dir / "numbers.txt").write_text(f"{config['seed']}\n")
    return {"count": 1}


def _out(tmp_path, stage, config, inputs=None, label="x"):
    return tmp_path / "artifacts" / stage / f"{label}-{fingerprint(stage, config, inputs or {})}"


def test_execute_writes_payload_and_complete_manifest(tmp_path, world_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _out(tmp_path, "world", world_config)
    manifest = execute("world", write_numbers, world_config, {}, out, reproducibility=LEVEL)
    assert (out / "numbers.txt").read_text() == "1234\n"
    on_disk = read_manifest(out)
    assert on_disk == json.loads(json.dumps(manifest))
    assert on_disk["fingerprint"] == out.name.rsplit("-", 1)[1]
    assert on_disk["label"] == "x"
    assert on_disk["metrics"] == {"count": 1}
    assert on_disk["environment"]["determinism"]["seed"] == 1234
    assert on_disk["environment"]["determinism"]["torch_threads"] == 1
    assert on_disk["reproducibility"] == LEVEL
    assert on_disk["code"]["code_digest"]
    assert on_disk["execution"]["exit_status"] == 0
    assert verify_payload(out) == []
    # no scratch or old directory left; only the kept hard link of the manifest (reprolm.keep)
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == [
        f".{out.name}.manifest"
    ]


def test_inputs_are_recorded_with_their_digests(tmp_path, world_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    upstream = _out(tmp_path, "world", world_config)
    up = execute("world", write_numbers, world_config, {}, upstream, reproducibility=LEVEL)
    config = {**world_config, "seed": 5}
    out = _out(tmp_path, "world", config, {"world": up["fingerprint"]}, label="y")
    manifest = execute(
        "world", write_numbers, config, {"world": upstream}, out, reproducibility=LEVEL
    )
    assert manifest["inputs"]["world"] == {
        "path": f"artifacts/world/{upstream.name}",
        "stage": "world",
        "fingerprint": up["fingerprint"],
        "digest": up["digest"],
    }


def test_stage_gets_inputs_with_manifests_and_a_context(tmp_path, world_config, monkeypatch):
    from stages.common.job import Input, JobContext

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    upstream = _out(tmp_path, "world", world_config)
    up = execute("world", write_numbers, world_config, {}, upstream, reproducibility=LEVEL)
    seen = {}

    def look(config, inputs, output_dir, context):
        seen.update(inputs=inputs, context=context)
        (output_dir / "x.txt").write_text((inputs["world"] / "numbers.txt").read_text())

    config = {**world_config, "seed": 5}
    out = _out(tmp_path, "world", config, {"world": up["fingerprint"]}, label="y")
    execute("world", look, config, {"world": upstream}, out, reproducibility=LEVEL)
    given = seen["inputs"]["world"]
    assert isinstance(given, Input) and os.fspath(given) == str(upstream)
    assert given.manifest["digest"] == up["digest"] == given.digest and given.stage == "world"
    context = seen["context"]
    assert isinstance(context, JobContext) and context.is_main and context.world_size == 1
    assert context.fingerprint == out.name.rsplit("-", 1)[1] and context.checkpoint_dir is None
    assert (out / "x.txt").read_text() == "1234\n"


def test_wrong_output_fingerprint_is_refused(tmp_path, world_config):
    with pytest.raises(JobError, match=r"name the output directory <label>-[0-9a-f]{12}"):
        execute("world", write_numbers, world_config, {}, tmp_path / "x-000000000000",
                reproducibility=LEVEL)  # fmt: skip


def test_missing_input_manifest_is_named(tmp_path, world_config):
    from reprolm.manifest import ManifestError

    with pytest.raises(ManifestError, match="run its job first"):
        execute("world", write_numbers, world_config, {"world": tmp_path / "nowhere"},
                tmp_path / "x-0", reproducibility=LEVEL)  # fmt: skip


def test_failed_job_keeps_the_previous_artifact(tmp_path, world_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = _out(tmp_path, "world", world_config)
    before = execute("world", write_numbers, world_config, {}, out, reproducibility=LEVEL)

    def crash(config, inputs, output_dir, context):
        (output_dir / "half.txt").write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        execute("world", crash, world_config, {}, out, reproducibility=LEVEL)
    assert read_manifest(out)["digest"] == before["digest"]
    assert not (out / "half.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        [out.name, f".{out.name}.manifest"]
    )


def test_cli_reports_bad_config_with_exit_code_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "stages.world", "--config-json", '{"seed": "x", "threads": 1}',
         "--output", str(tmp_path / "world-000000000000")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "seed: 'x' is not of type 'integer'" in done.stderr
    assert not (tmp_path / "world-000000000000").exists()


def test_thread_pinning_caps_blas_pools_loaded_before_it():
    """numpy (and its OpenBLAS pool) is imported before the runner pins threads, as when a stage
    module imports numpy at the top: the live pool is capped too, in a fresh interpreter."""
    code = (
        "import numpy, json\n"
        "from threadpoolctl import threadpool_info\n"
        "from reprolm.runner import pin_threads_and_seeds\n"
        "before = sorted({p['num_threads'] for p in threadpool_info()})\n"
        "record = pin_threads_and_seeds(1, 0, uses_torch=False)\n"
        "after = sorted({p['num_threads'] for p in threadpool_info()})\n"
        "print(json.dumps([before, after, record['blas_threads']]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    before, after, recorded = json.loads(done.stdout)
    assert after == recorded == [1]
    assert before != [1] or os.cpu_count() == 1  # the pool really was bigger before pinning
