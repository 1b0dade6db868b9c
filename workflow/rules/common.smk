# Helpers shared by every rule: the validated recipe's job plan and the generic stage call.
import json
import shlex
import sys

from reprolm.codedigest import code_digest
from reprolm.freshness import align_times, stale_artifacts
from reprolm.containers import IMAGE_PYTHON, IMAGE_VARIABLE, snakemake_image, stage_image
from reprolm.plan import load_plan
from reprolm.recipe import RecipeError, load_recipe_files
from reprolm.report import summary_table
from reprolm import stagetable
from reprolm.stagetable import STAGE_TABLE


def recipe_files():
    """The recipe files in Snakemake's merge order: the Snakefile's `configfile:` (unless
    --replace-workflow-config), then the --configfile ones."""
    given = [str(path) for path in workflow.config_settings.configfiles]
    declared = [path for path in map(str, workflow.configfiles) if path not in given]
    return ([] if workflow.config_settings.replace_workflow_config else declared) + given


try:
    # Snakemake's own `config` came through its plain YAML loader (last duplicate key wins,
    # aliases unbounded, 1e-3 a string): the plan reads the same files through reprolm's
    # checked loader, merged as Snakemake merges them, then --config on top.
    RECIPE, RECIPE_SOURCE = load_recipe_files(recipe_files(), workflow.config_settings.config)
    PLAN = load_plan(RECIPE, source=RECIPE_SOURCE)
except RecipeError as error:
    # A bad recipe stops the workflow before any job starts, naming every bad key path.
    sys.exit(f"reprolm: {error}")

# The interpreter running Snakemake runs the stages too (the project's virtualenv).
PYTHON = shlex.quote(sys.executable)
ARTIFACT = "artifacts/{stage}/{{label}}-{{fingerprint}}/provenance.json"
LOG = "logs/{stage}/{{label}}-{{fingerprint}}.log"

wildcard_constraints:
    label="[A-Za-z0-9_.]+",
    fingerprint="[0-9a-f]{12}",


def planned_job(stage, wildcards):
    """The planned job a requested artifact path stands for (refuses unplanned fingerprints)."""
    job = PLAN.get(stage, wildcards.label)
    if job.fingerprint != wildcards.fingerprint:
        raise ValueError(
            f"{stage}/{wildcards.label}-{wildcards.fingerprint} is not in this recipe's plan "
            f"(the planned fingerprint is {job.fingerprint}); request {job.manifest}"
        )
    return job


def stage_inputs(stage):
    return lambda wildcards: PLAN.input_manifests(planned_job(stage, wildcards))


def check_artifact_times():
    """Rerun decisions on content (reprolm.freshness), before the DAG is built: name the finished
    artifacts this checkout would not make as they are (other job code, or an input payload
    other than now), and give the current ones times no older than their inputs', so that
    Snakemake's time test (input newer than output) agrees with their content; after a plain
    `dvc pull` the times are in no particular order. (The Snakefile cannot force jobs itself:
    Snakemake sets its DAG settings only after parsing it.)"""
    if not workflow.is_main_process:
        return
    stale = stale_artifacts(PLAN)
    aligned = align_times(PLAN, stale)
    if aligned:
        print(f"reprolm: {len(aligned)} current artifact(s) were older than their inputs; their "
              "manifests' times now follow their inputs' (content decides)", file=sys.stderr)  # fmt: skip
    if not stale:
        return
    for path, why in stale.items():
        print(f"reprolm: stale {path}: {why}", file=sys.stderr)
    print(
        "reprolm: Snakemake reruns them where it has records of their runs (its code param); "
        "without (a fresh clone after a plain `dvc pull`) pass --forcerun "
        + " ".join(shlex.quote(path) for path in stale),
        file=sys.stderr,
    )


def stage_threads(stage):
    return lambda wildcards: PLAN.get(stage, wildcards.label).config["threads"]


def stage_resources(stage):
    """sbatch-facing resources of the stage's jobs (recipe `resources`, never fingerprinted)."""
    return PLAN.resources(stage)


def stage_call(stage, wildcards):
    """The job's command-line arguments: resolved config, inputs, output directory."""
    job = planned_job(stage, wildcards)
    inputs = " ".join(
        f"--input {name}={shlex.quote(path)}" for name, path in PLAN.input_dirs(job).items()
    )
    config_json = json.dumps(job.config, sort_keys=True, separators=(",", ":"))
    return f"--config-json {shlex.quote(config_json)} {inputs} --output {job.artifact_dir}"


def stage_params(stage):
    """Params Snakemake records and compares: a changed config or stage source reruns the job."""
    return {
        "call": lambda wildcards: stage_call(stage, wildcards),
        "code": code_digest(stage),
    }


def stage_container(stage):
    """The stage's image for `--sdm apptainer` (recipe `containers`, never fingerprinted)."""
    image = stage_image(PLAN.recipe.get("containers"), stage)
    return snakemake_image(image) if image else None


def stage_launcher(stage):
    """How a job's command starts: inside the stage's image (`--sdm apptainer` and an image set)
    the image's interpreter, told which image it runs in for its manifest; else this one."""
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    image = stage_image(PLAN.recipe.get("containers"), stage)
    if image and DeploymentMethod.APPTAINER in workflow.deployment_settings.deployment_method:
        return f"{IMAGE_VARIABLE}={shlex.quote(image)} {IMAGE_PYTHON}"
    return PYTHON


# Read by the shell commands below at job time (Snakemake formats them with the globals).
STAGE_LAUNCHERS = {entry.name: stage_launcher(entry.name) for entry in STAGE_TABLE}
STAGE_SHELL = "{{STAGE_LAUNCHERS[{stage}]}} -m stages.{stage} {{params.call}} > {{log}} 2>&1"
# Training jobs start through reprolm.launch: one process, torchrun, or srun + torchrun, with a
# generated DeepSpeed config, all from the job's resources (which, unlike params, never rerun a
# job: placement does not change what a job is). Their checkpoint interval comes from resources
# too, so changing it neither moves a fingerprint nor reruns a finished job (a resubmitted job
# resumes; reprolm/resume.py).
TRAINING_SHELL = (
    "{{STAGE_LAUNCHERS[{stage}]}} -m reprolm.launch --nodes {{resources.nodes}}"
    " --procs-per-node {{resources.procs_per_node}} --deepspeed {{resources.deepspeed}}"
    " --micro-batch-size {{resources.micro_batch_size}} -- stages.{stage} {{params.call}}"
    " --checkpoint-every {{resources.checkpoint_every}}"
    " --checkpoint-keep {{resources.checkpoint_keep}} > {{log}} 2>&1"
)


def stage_shell(name):
    """The shell line of stage ``name``'s rule: the table says which launcher starts it."""
    training = stagetable.stage(name).launcher == stagetable.TRAINING_LAUNCHER
    return (TRAINING_SHELL if training else STAGE_SHELL).format(stage=name)


def print_summary():
    print(summary_table(PLAN))


def restore_kept_manifests():
    """Put back the manifests Snakemake deleted of failed jobs whose old payload still verifies
    (reprolm.keep): a failed re-run never costs the artifact that was there."""
    from pathlib import Path

    from reprolm import keep

    for restored in keep.restore_all([Path(job.artifact_dir) for job in PLAN.jobs.values()]):
        print(f"reprolm: kept the previous artifact {restored} (its job failed)")
