from reprolm.runner import main
from stages.release.stage import run

# No torch in this stage (it copies files and compares eval results): skip importing it.
main("release", run, uses_torch=False)
