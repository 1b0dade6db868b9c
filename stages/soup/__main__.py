from reprolm.runner import main
from stages.soup.stage import run

main("soup", run)
