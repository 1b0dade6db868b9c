"""Training curves from each training artifact's ``training/log_history.json``.

One SVG, one panel per signal (loss, learning rate, grad norm, DPO reward margin, RLVR reward,
RLVR KL to the reference model: GRPO logs ``kl`` when beta > 0), one line per training stage,
against the stage's optimizer step. An MoE pretrain run (its ``training/router_stats.jsonl``)
adds a row of expert-load panels: per layer the busiest expert's share of the tokens over the
uniform share (1 = balanced), per layer the router entropy, and the token share of every expert
of the first layer, stacked. An rlvr artifact's ``training/rollouts.jsonl`` adds a row with its
mean reward per verifier and step.

matplotlib's own default style (not the user's matplotlibrc) through a bare ``Figure`` (no
pyplot state, no GUI backend); text stays text (small, searchable); no date in the file, fixed
ids: the same run draws the same bytes. The caption is the figure's title.
"""

from __future__ import annotations

import io
from typing import Any

from reprolm.htmlreport.inputs import Run
from reprolm.stagetable import TRAINING_STAGES

LOG_HISTORY = "training/log_history.json"
ROUTER_STATS = "training/router_stats.jsonl"
ROLLOUTS = "training/rollouts.jsonl"
VERIFIER_PANEL = "RLVR reward by verifier"
EXPERT_PANELS = ("expert load: max / mean tokens", "router entropy (nats)", "expert share, layer 0")
# (panel title, log-history keys tried in order, stages it applies to: None = every stage)
PANELS: tuple[tuple[str, tuple[str, ...], tuple[str, ...] | None], ...] = (
    ("loss", ("loss",), None),
    ("learning rate", ("learning_rate",), None),
    ("grad norm", ("grad_norm",), None),
    ("DPO reward margin", ("rewards/margins",), ("dpo",)),
    ("RLVR reward", ("reward", "rewards/mean"), ("rlvr",)),
    ("RLVR KL", ("kl",), ("rlvr",)),
)


def series(history: list[Any], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the log-history entries that hold ``key`` as a finite number."""
    steps, values = [], []
    for position, entry in enumerate(history):
        if not isinstance(entry, dict):
            continue
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            step = entry.get("step")
            steps.append(float(step) if isinstance(step, (int, float)) else float(position + 1))
            values.append(float(value))
    return steps, values


def histories(run: Run) -> dict[str, list[Any]]:
    """Training stage -> its log history (stages without a finished artifact are absent)."""
    found = {}
    for stage in TRAINING_STAGES:
        artifact = run.one(stage)
        history = artifact.json(LOG_HISTORY) if artifact else None
        if isinstance(history, list):
            found[stage] = history
    return found


def curves(run: Run) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Panel title -> stage -> (steps, values): what :func:`svg` draws."""
    logs = histories(run)
    drawn: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for title, keys, stages in PANELS:
        lines = {}
        for stage, history in logs.items():
            if stages is not None and stage not in stages:
                continue
            for key in keys:
                steps, values = series(history, key)
                if values:
                    lines[stage] = (steps, values)
                    break
        drawn[title] = lines
    return drawn


def expert_load(run: Run) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Panel title -> line label -> (steps, values) from the pretrain router stats ({} for a
    dense run); the third panel's lines are cumulative shares (stacked)."""
    artifact = run.one("pretrain")
    rows = artifact.jsonl(ROUTER_STATS) if artifact else None
    rows = [r for r in rows or [] if isinstance(r, dict) and isinstance(r.get("layers"), list)]
    if not rows:
        return {}
    drawn: dict[str, dict[str, tuple[list[float], list[float]]]] = {t: {} for t in EXPERT_PANELS}
    imbalance, entropy, share = drawn.values()
    for row in rows:
        step = float(row.get("step") or 0)
        for layer in row["layers"]:
            tokens = [float(t) for t in layer.get("tokens") or []]
            name = f"layer {layer.get('layer')}"
            if tokens and sum(tokens) > 0:
                mean = sum(tokens) / len(tokens)
                imbalance.setdefault(name, ([], []))[0].append(step)
                imbalance[name][1].append(max(tokens) / mean)
                if layer.get("layer") == 0:
                    total, running = sum(tokens), 0.0
                    for expert, count in enumerate(tokens):
                        running += count / total
                        line = share.setdefault(f"expert {expert}", ([], []))
                        line[0].append(step)
                        line[1].append(running)
            if isinstance(layer.get("entropy"), (int, float)):
                entropy.setdefault(name, ([], []))[0].append(step)
                entropy[name][1].append(float(layer["entropy"]))
    return drawn


def verifier_rewards(run: Run) -> dict[str, tuple[list[float], list[float]]]:
    """Verifier -> (steps, mean reward of its rollouts in each step) from the rlvr artifact's
    rollouts ({} without them); rows of another shape are skipped."""
    artifact = run.one("rlvr")
    rows = artifact.jsonl(ROLLOUTS) if artifact else None
    rewards: dict[str, dict[float, list[float]]] = {}
    for row in rows or []:
        if not isinstance(row, dict) or not isinstance(row.get("verifier"), str):
            continue
        step, reward = row.get("step"), row.get("reward")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (step, reward)):
            rewards.setdefault(row["verifier"], {}).setdefault(float(step), []).append(reward)
    return {
        verifier: (
            [s for s in sorted(steps)],
            [sum(steps[s]) / len(steps[s]) for s in sorted(steps)],
        )
        for verifier, steps in sorted(rewards.items())
    }


def _draw_verifier_rewards(axes: Any, lines: dict[str, tuple[list[float], list[float]]]) -> None:
    ax = axes[0]
    ax.set_title(VERIFIER_PANEL)
    ax.set_xlabel("optimizer step")
    ax.grid(linewidth=0.3)
    for index, (verifier, (steps, values)) in enumerate(lines.items()):
        marker = "o" if len(values) < 30 else None
        ax.plot(steps, values, label=verifier, color=f"C{index % 10}", marker=marker, ms=3)
    ax.legend(fontsize=7, frameon=False)
    for other in axes[1:]:
        other.axis("off")


def _draw_expert_load(axes: Any, drawn: dict[str, dict[str, Any]]) -> None:
    for ax, (title, lines) in zip(axes, drawn.items(), strict=True):
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.grid(linewidth=0.3)
        stacked = title == EXPERT_PANELS[2]
        below: list[float] | None = None
        for index, (label, (steps, values)) in enumerate(lines.items()):
            if stacked:
                base = below or [0.0] * len(values)
                ax.fill_between(steps, base, values, color=f"C{index % 10}", linewidth=0)
                below = values
            else:
                ax.plot(steps, values, label=label, color=f"C{index % 10}", linewidth=1)
        if not stacked and len(lines) <= 8:
            ax.legend(fontsize=6, frameon=False)


def svg(run: Run) -> str:
    """The curves as one SVG document."""
    import matplotlib
    import matplotlib.style
    from matplotlib.figure import Figure

    drawn = curves(run)
    experts = expert_load(run)
    colors = {stage: f"C{i}" for i, stage in enumerate(TRAINING_STAGES)}
    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context(
            {"svg.fonttype": "none", "svg.hashsalt": "reprolm-report", "font.size": 8}
        ),
    ):
        verifiers = verifier_rewards(run)
        rows = 2 + bool(experts) + bool(verifiers)
        fig = Figure(figsize=(12.0, 3.2 * rows))
        grid = fig.subplots(rows, 3)
        axes = grid[:2].flatten()
        fig.suptitle(
            f"training curves of {run.name} from each stage's training/log_history.json",
            fontsize=8,
        )
        if verifiers:
            _draw_verifier_rewards(grid[2], verifiers)
        if experts:
            _draw_expert_load(grid[-1], experts)
        for ax, (title, lines) in zip(axes, drawn.items(), strict=True):
            ax.set_title(title)
            ax.set_xlabel("optimizer step")
            ax.grid(linewidth=0.3)
            for stage, (steps, values) in lines.items():
                marker = "o" if len(values) < 30 else None
                ax.plot(steps, values, label=stage, color=colors[stage], marker=marker, ms=3)
            if lines:
                ax.legend(fontsize=7, frameon=False)
            else:
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()
