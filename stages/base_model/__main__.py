from reprolm.runner import main
from stages.base_model.stage import run

# Copies and hashes files: no torch needed (saves its start-up).
main("base_model", run, uses_torch=False)
