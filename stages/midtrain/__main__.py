from reprolm.runner import main
from stages.midtrain.stage import run

main("midtrain", run)
