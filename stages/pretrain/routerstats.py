"""``training/router_stats.jsonl``: an MoE run's per-layer router statistics per log entry.

The trainer logs them under ``router/...`` keys (``stages.pretrain.objective``). Each row holds
the step, the load-balancing and router z-loss values that entered the loss (means over the
steps since the previous row), and per layer the top-k token counts per expert, that layer's
load balance, router z-loss and router entropy (nats). log_history.json keeps the per-layer
numbers (they reach MLflow as ``train/router/layer<i>/<name>``) but not the token lists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stages.common.jsonl import write_jsonl

FILE = "training/router_stats.jsonl"
_LAYER = re.compile(r"router/layer(\d+)/(\w+)")


def split_history(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict]]:
    """(log history without the token lists, router rows: one per entry with router keys)."""
    kept, rows = [], []
    for entry in history:
        layers: dict[int, dict[str, Any]] = {}
        row: dict[str, Any] = {}
        for key, value in entry.items():
            match = _LAYER.fullmatch(key)
            if match:
                layers.setdefault(int(match.group(1)), {})[match.group(2)] = value
            elif key.startswith("router/"):
                row[key.removeprefix("router/")] = value
        if layers or row:
            row["step"] = entry.get("step")
            row["layers"] = [{"layer": i, **layers[i]} for i in sorted(layers)]
            rows.append(row)
        kept.append({k: v for k, v in entry.items() if not isinstance(v, list)})
    return kept, rows


def write_router_stats(output_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Write the rows (nothing for a dense model)."""
    if rows:
        write_jsonl(output_dir / FILE, rows)
