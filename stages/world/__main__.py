from reprolm.runner import main
from stages.world.stage import run

# No torch in this stage: skip importing it (saves ~1.5 s of start-up per job).
main("world", run, uses_torch=False)
