# DVC: after a successful run, record the finished artifacts in the DVC cache (dvc commit).
# Only in a DVC repository (.dvc/ in the working directory); REPROLM_DVC_COMMIT=0 turns it off.
# Snakemake keeps a single `onsuccess` handler, so the Snakefile's handler calls this function.
import os


def dvc_commit_on_success():
    if not os.path.isdir(".dvc") or os.environ.get("REPROLM_DVC_COMMIT") == "0":
        return
    # Imported here: DVC costs ~1 s to import and most runs are not in a DVC repo.
    from reprolm.dvc.storage import commit_on_success

    commit_on_success(PLAN)
