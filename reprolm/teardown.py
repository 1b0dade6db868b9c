"""The end of a multi-process job: every rank leaves the process group before it exits.

A rank that exits with its process group alive leaves gloo's and DeepSpeed's communication
threads to the interpreter's teardown, where one can abort the process ("terminate called
without an active exception", SIGABRT) after the job's work was done. So every rank waits for
the others at a barrier (rank 0 arrives after installing the artifact), then destroys the
group: through DeepSpeed when it made it (that also drops DeepSpeed's group references), else
through torch.distributed. A single process has no group: nothing to do.
"""

from __future__ import annotations

import sys


def leave_process_group() -> bool:
    """Barrier, then destroy the default process group; False when there was none."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_available():
        return False
    if not torch.distributed.is_initialized():
        return False
    deepspeed_comm = sys.modules.get("deepspeed.comm")
    try:
        if deepspeed_comm is not None and deepspeed_comm.is_initialized():
            deepspeed_comm.barrier()
            deepspeed_comm.destroy_process_group()
        else:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
    except Exception as error:  # the job's work is done: a failed teardown must not undo it
        print(f"reprolm: warning: leaving the process group failed: {error}", file=sys.stderr)
        return False
    return True
