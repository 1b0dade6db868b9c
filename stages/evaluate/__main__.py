from reprolm.runner import main
from stages.evaluate.stage import run

main("evaluate", run)
