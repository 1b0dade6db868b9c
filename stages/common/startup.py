"""Start-up costs the training libraries put on every job, avoided with equivalent settings.

Measured on the 2-vCPU dev machine (idle; about twice as much under load), per training job:

* accelerate's ``unwrap_model`` (called in every Trainer's ``__init__``) imports DeepSpeed,
  ~1.8 s, whenever it is installed, only to ask ``isinstance(model, DeepSpeedEngine)``.
  ``lazy_deepspeed_check`` makes accelerate ask that only when DeepSpeed is already imported:
  no DeepSpeedEngine can exist otherwise, so every answer is the same.
* The Trainer's ``free_memory()`` at the start of training runs ``gc.collect()`` over every
  object the imports and the model load made, ~0.45 s. ``freeze_heap`` moves them out of the
  collector's view first (``gc.freeze``, meant for this); nothing numeric depends on it.

Not avoidable here: torch (~2 s) and, through transformers' masking_utils, torch._dynamo and
torch._inductor (~2-3 s) in every job that loads a model. None of this changes what a job
computes: tests/stages/test_startup.py checks that unwrapping answers the same and that a
training job no longer imports DeepSpeed.
"""

from __future__ import annotations

import gc
import sys


def lazy_deepspeed_check() -> None:
    """accelerate's ``extract_model_from_parallel`` imports DeepSpeed only if it is loaded."""
    import accelerate.utils.other as other

    other.is_deepspeed_available = _deepspeed_loaded


def _deepspeed_loaded() -> bool:
    return "deepspeed" in sys.modules


def freeze_heap() -> None:
    """Exclude the objects alive now from later ``gc.collect()`` passes (cyclic garbage among
    them stays until the process exits: a job process is short-lived)."""
    gc.freeze()
