from reprolm.runner import main
from stages.pretrain.stage import run

main("pretrain", run)
