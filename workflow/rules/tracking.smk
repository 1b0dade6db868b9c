# MLflow lineage (reprolm.tracking): one parent run per workflow invocation, one child run per
# job. `onstart` creates the parent run and exports REPROLM_MLFLOW_INVOCATION and
# REPROLM_MLFLOW_PARENT_RUN, which every job inherits; the runner's log_job() then logs the job
# as a child run. The end hooks close the parent run and replay whatever was spooled while the
# store was unreachable. REPROLM_MLFLOW=off turns all of it off. Include after common.smk.
# Snakemake keeps a single handler per hook, and the Snakefile owns `onsuccess` and `onerror`:
# their handlers call mlflow_workflow_end() and mlflow_workflow_failed().
from reprolm import tracking as mlflow_tracking


onstart:
    mlflow_tracking.start_workflow(recipe=config.get("name"), jobs=len(PLAN.jobs))


def mlflow_workflow_end():
    mlflow_tracking.end_workflow(success=True)


def mlflow_workflow_failed():
    mlflow_tracking.end_workflow(success=False)
