"""What SFT did to its conversations' token sequences: truncation and packing, recorded.

TRL's SFTTrainer tokenizes, truncates (or packs) and drops fully masked examples in one call
(``_prepare_dataset``) and keeps no count of what it cut. ``RecordingSFTTrainer`` runs that same
TRL code twice, first without a length limit and without packing (tokenize + labels only), then
on the tokenized rows with the configured limit (truncate or pack; TRL skips tokenizing rows
that already have ``input_ids``), so the lengths before and after are both TRL's own and the
difference is exact. Imported only where a trainer is built (it imports TRL).
"""

from __future__ import annotations

import copy
from typing import Any

from trl import SFTTrainer

IGNORE = -100  # TRL's label for a token outside the loss


def _tokens(rows: Any) -> tuple[list[int], int]:
    """Per-row token counts and the number of supervised (label != -100) tokens."""
    lengths = [len(ids) for ids in rows["input_ids"]]
    supervised = sum(sum(1 for label in labels if label != IGNORE) for labels in rows["labels"])
    return lengths, supervised


def sequence_record(before: Any, after: Any, args: Any) -> dict[str, Any]:
    """``training/sequences.json``: the rows before truncation/packing against what is trained."""
    lengths, supervised = _tokens(before)
    kept_lengths, kept_supervised = _tokens(after)
    limit = args.max_length
    record: dict[str, Any] = {
        "max_length": limit,
        "truncation_mode": args.truncation_mode,
        "packing": bool(args.packing),
        "packing_strategy": args.packing_strategy if args.packing else None,
        "examples": len(lengths),
        "examples_over_max_length": sum(1 for n in lengths if limit is not None and n > limit),
        "longest_example": max(lengths, default=0),
        "tokens": sum(lengths),
        "tokens_trained": sum(kept_lengths),
        "tokens_dropped": sum(lengths) - sum(kept_lengths),
        "supervised_tokens": supervised,
        "supervised_tokens_trained": kept_supervised,
        "sequences": len(kept_lengths),
    }
    if args.packing:
        record["examples_per_sequence"] = round(len(lengths) / max(1, len(kept_lengths)), 4)
        record["fill"] = round(sum(kept_lengths) / max(1, len(kept_lengths) * limit), 4)
    else:
        # TRL drops an example that truncation left without a supervised token.
        record["examples_dropped_fully_masked"] = len(lengths) - len(kept_lengths)
    return record


class RecordingSFTTrainer(SFTTrainer):
    """SFTTrainer whose dataset preparation also records ``sequences`` (above)."""

    sequences: dict[str, Any]

    def _prepare_dataset(  # type: ignore[override]
        self,
        dataset: Any,
        processing_class: Any,
        args: Any,
        packing: bool,
        formatting_func: Any,
        dataset_name: str,
    ) -> Any:
        unlimited = copy.copy(args)  # the same arguments, minus the cut (TRL reads only these)
        unlimited.max_length = None
        unlimited.shuffle_dataset = False
        full = super()._prepare_dataset(
            dataset, processing_class, unlimited, False, formatting_func, dataset_name
        )
        trained = super()._prepare_dataset(
            full, processing_class, args, packing, formatting_func, dataset_name
        )
        self.sequences = sequence_record(full, trained, args)
        return trained
