from reprolm.runner import main
from stages.responses.stage import run

# Copies and hashes a file: no torch needed.
main("responses", run, uses_torch=False)
