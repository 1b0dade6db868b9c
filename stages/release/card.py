"""The evaluation table and the model card (README.md with YAML front matter)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

from evals import table


def read_results(eval_dir: pathlib.Path) -> dict:
    """Load ``results.json`` of an evaluate artifact."""
    path = pathlib.Path(eval_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: eval inputs must be evaluate artifacts")
    results = json.loads(path.read_text(encoding="utf-8"))
    for key in ("checkpoint", "tasks"):
        if key not in results:
            raise ValueError(f"{path}: lacks the {key!r} field (not an evaluate results file)")
    return results


def format_eval_table(
    results_by_checkpoint: dict[str, dict | pathlib.Path], order: Sequence[str]
) -> str:
    """``eval_table.md``: the one tasks x checkpoints table (:func:`evals.table.build`), one row
    per checkpoint in pipeline order (``order``: the checkpoint stages, the release config's
    ``checkpoints``). ``results_by_checkpoint`` maps a row label (e.g. ``"sft"``) to an
    evaluate artifact directory or its ``results.json`` document."""
    return table.checkpoint_markdown(table.build(results_by_checkpoint, order))


def model_index(name: str, results: dict) -> list[dict]:
    """The HF ``model-index`` entry: every metric of the released checkpoint, per task."""
    entries = []
    for task in sorted(results["tasks"]):
        metrics = results["tasks"][task]
        entries.append(
            {
                "task": {"type": "text-generation", "name": task},
                "dataset": {"type": task, "name": f"tiny world {task}", "split": "test"},
                "metrics": [
                    {"type": metric, "name": metric, "value": metrics[metric]}
                    for metric in sorted(metrics)
                ],
            }
        )
    return [{"name": name, "results": entries}]


def front_matter(
    config: dict, released: dict, base_model: str | None, datasets: list[str], stages: list[str]
) -> str:
    """The YAML metadata block of the model card."""
    import yaml

    meta = {
        "license": config["license"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "base_model": base_model,
        "base_model_relation": "finetune" if base_model else None,
        "datasets": datasets,
        "tags": ["reprolm", "olmo2", "synthetic-data", *stages],
        "model-index": model_index(config["name"], released),
    }
    meta = {k: v for k, v in meta.items() if v is not None}
    text = yaml.safe_dump(meta, sort_keys=True, allow_unicode=True, width=100)
    return f"---\n{text}---\n"


def usage() -> str:
    """How to load and prompt the release offline."""
    return (
        "```python\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        'path = "model"  # the model/ directory of this release: nothing is downloaded\n'
        "tokenizer = AutoTokenizer.from_pretrained(path)\n"
        "model = AutoModelForCausalLM.from_pretrained(path)\n"
        'messages = [{"role": "user", "content": "What is 12 plus 7?"}]\n'
        "inputs = tokenizer.apply_chat_template(\n"
        '    messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"\n'
        ")\n"
        "output = model.generate(**inputs, max_new_tokens=32, do_sample=False)\n"
        'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], '
        "skip_special_tokens=True))\n"
        "```\n"
    )


def readme(
    config: dict,
    *,
    model_facts: dict,
    released_label: str,
    evaluated: bool,
    comparison: str,
    comparison_files: list[str],
    lineage_rows: list[dict],
    front: str,
) -> str:
    """The model card: front matter, what it is, recipe, evaluation, lineage, usage.

    ``comparison`` is the Markdown comparison table (tasks × checkpoints), ``comparison_files``
    the payload paths of its JSON, CSV and plot.
    """
    name = config["name"]
    parts = [
        front,
        f"# {name}\n",
        f"{name} is a toy causal language model ({model_facts['architecture']}, "
        f"{model_facts['parameters']:,} parameters, {model_facts['layers']} layers, hidden size "
        f"{model_facts['hidden_size']}, vocabulary {model_facts['vocab_size']}) built end to end "
        "by reprolm from a synthetic tiny world. It exists to make the pipeline reproducible "
        f"and inspectable, not to be useful. This release is the `{released_label}` checkpoint.\n",
    ]
    if config.get("recipe_summary"):
        parts += ["## Recipe\n", config["recipe_summary"].strip() + "\n"]
    parts += [
        "## Evaluation\n",
        "lm-eval on the held-out tiny-world eval sets: accuracy (log-likelihood) for multiple "
        "choice, exact match (the shared verifier, the same code as the RLVR reward) for "
        "generation. Post-trained checkpoints are prompted with the chat template. Tasks with "
        "an OLMES-style id (`task:format::regime`) are versioned task specs; a number is only "
        "compared with numbers computed under the same spec hash.\n",
        comparison,
    ]
    plots = [f for f in comparison_files if f.endswith(".png")]
    parts += [f"![scores per task and checkpoint]({f})\n" for f in plots]
    parts.append(
        "The same table as files: "
        + ", ".join(f"`{f}`" for f in comparison_files)
        + " (CSV: one line per cell, exact values; JSON: the table and every score with its "
        "spec hash; `reprolm eval compare` compares releases).\n"
    )
    if not evaluated:
        parts.append(f"The released `{released_label}` checkpoint itself was not evaluated.\n")
    if lineage_rows:
        parts += [
            "## Lineage\n",
            "Every upstream provenance manifest is under `lineage/` (bill of materials):\n",
            "| stage | label | fingerprint | digest |\n|---|---|---|---|\n"
            + "".join(
                f"| {r['stage']} | {r['label']} | `{r['fingerprint']}` | `{r['digest']}` |\n"
                for r in lineage_rows
            ),
        ]
    parts += ["## Usage\n", usage()]
    return "\n".join(parts)
