from reprolm.runner import main
from stages.release.stage import run

main("release", run)
