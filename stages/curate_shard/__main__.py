from reprolm.runner import main
from stages.curate_shard.stage import run

# No torch in this stage: skip importing it (saves ~1.5 s of start-up per job).
main("curate_shard", run, uses_torch=False)
