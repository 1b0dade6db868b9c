from reprolm.runner import main
from stages.source.stage import run

# Hashes and counts files: no torch needed (saves its start-up).
main("source", run, uses_torch=False)
