from reprolm.runner import main
from stages.tokenize_shard.stage import run

# No torch in this stage: skip importing it (saves ~1.5 s of start-up per job).
main("tokenize_shard", run, uses_torch=False)
