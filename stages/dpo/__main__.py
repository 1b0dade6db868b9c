from reprolm.runner import main
from stages.dpo.stage import run

main("dpo", run)
