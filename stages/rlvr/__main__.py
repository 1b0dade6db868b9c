from reprolm.runner import main
from stages.rlvr.stage import run

main("rlvr", run)
