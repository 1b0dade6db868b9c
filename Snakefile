# reprolm: the one DAG of the open-model recipe.
#   world -> curate -> tokenize -> pretrain -> sft -> dpo -> rlvr -> evaluate (each checkpoint) -> release
# Every job writes artifacts/<stage>/<label>-<fingerprint>/ (payload + provenance.json); the job
# plan, fingerprints included, is computed from the validated recipe before any job starts.
import os

from snakemake.utils import min_version

min_version("9.0")


# The default recipe; `--configfile config/micro.yaml` is merged over it key by key (Snakemake
# semantics), which is harmless because tiny.yaml holds only schema defaults.
configfile: os.path.join(workflow.basedir, "config", "tiny.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/dvc.smk"
include: "workflow/rules/stages.smk"
include: "workflow/rules/report.smk"


# `snakemake --report report.html`: the results of rule report, this page first.
report: "workflow/report/workflow.rst"


check_artifact_times()


rule all:
    default_target: True
    input:
        PLAN.targets(),
        rules.report.output,


# Snakemake keeps one handler per hook: these run every end-of-run step.
onsuccess:
    mlflow_workflow_end()
    dvc_commit_on_success()
    print_summary()


onerror:
    restore_kept_manifests()
    mlflow_workflow_failed()
