from reprolm.runner import main
from stages.score.stage import run

# The generative scorers read files only: no model, no torch.
main("score", run, uses_torch=False)
