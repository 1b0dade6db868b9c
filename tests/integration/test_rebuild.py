"""``reprolm rebuild``: re-run recorded jobs, from the checkout or a git worktree, and compare."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from reprolm.plan import load_plan
from tests.support import MICRO, clone_workspace, make_checkout, reprolm, run_snakemake

pytestmark = pytest.mark.slow


def rebuild(workspace, artifact, env: dict[str, str] | None = None) -> tuple[int, dict]:
    done = reprolm(workspace, "rebuild", "--verify", "--json", str(artifact), env=env)
    return done.returncode, json.loads(done.stdout or "{}") if done.stdout else {}


# Another machine's numeric code path, as far as one machine can play it: a different ATen
# dispatch and MKL code path in the rebuilding process's environment. The runner pins both
# (reprolm.numerics), so every job must come out bit-identical anyway. The other machine also
# runs offline (HF_HUB_OFFLINE=1 once changed the tokenizer_config.json a checkpoint saves).
OTHER_MACHINE = {
    "ATEN_CPU_CAPABILITY": "avx512",
    "MKL_CBWR": "AUTO",
    "ONEDNN_MAX_CPU_ISA": "ALL",
    "HF_HUB_OFFLINE": "1",
}


def test_every_micro_job_rebuilds_bit_identical_under_another_numeric_path(micro_workspace):
    """One rebuild of every job, in the other machine's environment (a rebuild in this one's
    environment proves less and took as long: both ran until 2026-12)."""
    plan = load_plan(micro_workspace / MICRO)
    for job in plan.jobs.values():
        code, result = rebuild(micro_workspace, job.artifact_dir, env=OTHER_MACHINE)
        assert code == 0, (job.key, result)
        assert result["ok"] and result["differing_files"] == [], job.key
        assert result["rebuilt_digest"] == result["original_digest"]
        assert result["code_source"] == "checkout", result["source"]
        manifest = json.loads((micro_workspace / job.manifest).read_text())
        numerics = manifest["environment"]["numerics"]
        assert numerics["pinned"] is True and numerics.get("torch_cpu_capability") in (None, "AVX2")


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def git_checkout(tmp_path):
    repo = make_checkout(tmp_path / "repo")
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "recipe")
    return repo


def world_job(repo):
    job = load_plan(repo / MICRO).get("world", "world")
    run_snakemake(repo, job.manifest)
    return job


def test_changed_code_rebuilds_from_a_worktree_at_the_recorded_commit(git_checkout):
    repo = git_checkout
    job = world_job(repo)
    source = repo / "stages" / "world" / "stage.py"
    source.write_text(source.read_text() + "\n# later change\n")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "later")
    code, result = rebuild(repo, job.artifact_dir)
    assert code == 0, result
    assert result["code_source"] == "recorded-commit"
    assert result["source"].startswith("recorded commit ")
    assert "stages/world/stage.py" in result["source"], "names the job code that differs"
    assert result["rebuilt_digest"] == result["original_digest"]
    listed = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True,
                            text=True).stdout  # fmt: skip
    assert len(listed.strip().splitlines()) == 1, "the worktree is removed afterwards"


def test_job_code_edit_outside_stages_rebuilds_from_the_recorded_commit(git_checkout):
    """curate imports the spec registry from ``evals/``: an edit there is not "the recorded
    code", so the rebuild runs the recorded commit and names the file; world does not import it
    and still rebuilds from the checkout."""
    repo = git_checkout
    plan = load_plan(repo / MICRO)
    curate, world = plan.get("curate", "curate"), plan.get("world", "world")
    run_snakemake(repo, curate.manifest)
    source = repo / "evals" / "registry.py"
    source.write_text(source.read_text() + "\n# a later edit of job code\n")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "later")
    code, result = rebuild(repo, curate.artifact_dir)
    assert code == 0, result
    assert result["code_source"] == "recorded-commit"
    assert "evals/registry.py" in result["source"]
    assert result["rebuilt_digest"] == result["original_digest"]
    code, result = rebuild(repo, world.artifact_dir)
    assert code == 0 and result["code_source"] == "checkout", result


def test_dirty_tree_needs_its_saved_diff(git_checkout):
    repo = git_checkout
    source = repo / "stages" / "world" / "stage.py"
    original = source.read_text()
    source.write_text(original + "\n# uncommitted change\n")
    job = world_job(repo)
    manifest = json.loads((repo / job.manifest).read_text())
    assert manifest["code"]["dirty"] is True and manifest["code"]["diff_hash"]
    source.write_text(original)  # the uncommitted change is gone from the tree
    code, result = rebuild(repo, job.artifact_dir)
    assert code == 0, result
    assert result["rebuilt_digest"] == result["original_digest"]
    shutil.rmtree(repo / ".reprolm" / "diffs")
    code, result = rebuild(repo, job.artifact_dir)
    assert code == 2
    assert "was dirty and its diff" in result["error"]
    assert "unavailable" in result["error"]


def test_code_with_a_secret_taken_out_of_the_saved_diff_is_refused_naming_it(
    git_checkout, monkeypatch
):
    """The saved diff never holds the secret (``reprolm.saveddiff``), so the job code it was in
    cannot be re-created: the rebuild says so and names the scrubbed file."""
    repo = git_checkout
    secret = "hf_rebuildPLANTED0secret"
    monkeypatch.setenv("HF_TOKEN", secret)
    source = repo / "stages" / "world" / "stage.py"
    original = source.read_text()
    source.write_text(original + f"\n# HUB_TOKEN = '{secret}'\n")
    job = world_job(repo)
    source.write_text(original)
    code, result = rebuild(repo, job.artifact_dir)
    assert code == 2, result
    assert "credentials were taken out of the saved diff" in result["error"]
    assert "scrubbed stages/world/stage.py: 1 secret(s)" in result["error"]
    assert secret not in json.dumps(result)
    patches = list((repo / ".reprolm" / "diffs").glob("*.patch"))
    assert patches and all(secret not in p.read_text() for p in patches)


def test_missing_input_is_named(micro_workspace, tmp_path):
    plan = load_plan(micro_workspace / MICRO)
    workspace = tmp_path / "w"
    shutil.copytree(micro_workspace, workspace)
    curate = plan.get("curate", "curate")
    shutil.rmtree(workspace / plan.get("world", "world").artifact_dir)
    code, result = rebuild(workspace, curate.artifact_dir)
    assert code == 2
    assert "input 'world'" in result["error"] and "is not here" in result["error"]


@pytest.fixture(scope="module")
def zero2_workspace(tmp_path_factory):
    """The micro recipe up to pretrain, pretrain trained by DeepSpeed ZeRO-2 on 2 CPU processes
    (torchrun, gloo) through its Snakemake rule, as in test_distributed."""
    from tests.integration.test_distributed import ZERO2, placed_recipe

    workspace = make_checkout(tmp_path_factory.mktemp("zero2") / "workspace")
    recipe, plan = placed_recipe(workspace, ZERO2, "zero2")
    job = plan.get("pretrain", "pretrain")
    run_snakemake(workspace, job.manifest, recipe=recipe)
    return workspace, job


def test_a_two_process_zero2_job_rebuilds_as_recorded(zero2_workspace):
    workspace, job = zero2_workspace
    done = reprolm(workspace, "rebuild", "--as-recorded", "--verify", "--json", job.artifact_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["ok"] and result["rebuilt_digest"] == result["original_digest"]
    placement = result["placement"]
    assert placement["as_recorded"] is True and placement["processes"] == 2
    assert placement["same"] is True and placement["differences"] == []
    rebuilt = placement["rebuilt"]
    assert rebuilt["procs_per_node"] == 2 and rebuilt["launched"] is True
    assert rebuilt["deepspeed"] == "zero2" and rebuilt["device"] == "cpu"

    # Without --as-recorded: one local process, and the text says it was not the recorded one.
    done = reprolm(workspace, "rebuild", job.artifact_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "placement: recorded 2 processes (1 node x 2, DeepSpeed zero2)" in done.stdout
    assert "rebuilt as 1 process on cpu, on the host (pass --as-recorded)" in done.stdout


# Each case edits a copy of the ZeRO-2 job's manifest (its recorded execution / environment
# block) into a placement this machine cannot give; the payload is untouched.
GPU = {"gpu_model": "NVIDIA H100 80GB HBM3", "gpu_count": 8, "cuda": "12.4", "cudnn": 90100}
IMAGE = {"runtime": "podman", "image": "localhost/reprolm-train", "digest": "sha256:" + "0" * 64}
EDITS = {
    # Recorded on 8 GPUs, one process per GPU: no machine here has them (the H200 device has 1).
    "gpu": (lambda m: (m["environment"].update(accelerators=GPU),
                       m["execution"]["launch"].update(procs_per_node=8)),
            "environment.accelerators records 8 GPU(s) (NVIDIA H100 80GB HBM3)"),
    # Recorded over 2 nodes (srun + torchrun), rebuilt outside any SLURM allocation.
    "nodes": (lambda m: m["execution"]["launch"].update(nodes=2),
              "execution.launch.nodes=2: a multi-node job is rebuilt inside a SLURM allocation"),
    # Recorded in an image, by digest, that this machine does not have.
    "image": (lambda m: m["environment"].update(container_image=IMAGE),
              "environment.container_image is localhost/reprolm-train@sha256:000"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(EDITS))
def test_as_recorded_refuses_what_this_machine_cannot_give(zero2_workspace, tmp_path, case):
    source, job = zero2_workspace
    workspace = clone_workspace(source, tmp_path / "ws")
    path = workspace / job.manifest
    manifest = json.loads(path.read_text())
    edit, named = EDITS[case]
    edit(manifest)
    path.unlink()  # the kept hard link (.<name>.manifest) keeps the recorded original
    path.write_text(json.dumps(manifest))
    done = reprolm(workspace, "rebuild", "--as-recorded", "--verify", "--json", job.artifact_dir,
                   env={"SLURM_JOB_ID": ""})  # fmt: skip
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    error = json.loads(done.stdout)["error"]
    assert error.startswith("cannot rebuild as recorded") and named in error, error
