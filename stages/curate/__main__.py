from reprolm.runner import main
from stages.curate.stage import run

# No torch in this stage: skip importing it (saves ~1.5 s of start-up per job).
main("curate", run, uses_torch=False)
