from reprolm.runner import main
from stages.evaldata.stage import run

# No torch in this stage.
main("evaldata", run, uses_torch=False)
