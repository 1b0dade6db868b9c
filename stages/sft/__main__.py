from reprolm.runner import main
from stages.sft.stage import run

main("sft", run)
