"""Complement coercion surprisal: per-region surprisal of sentences in a coercion condition
("began the book") and a control condition ("wrote the book"), the per-region effect with a
paired t-test across items, a table and a bar plot.

Region surprisal = -log2 P(region | sentence start + preceding regions), summed over the
region's tokens. The context is conditioned on the start token's *id* (lm-eval's prefix token:
the tokenizer's bos id, else its eos id, e.g. ``<|endoftext|>``), prepended to the encoded text;
it is never written into the text (``"<s>The editor"`` would make a SentencePiece/Unigram
tokenizer encode ``The`` without its ``▁`` word-start marker). Each region's tokens are those the
tokenizer gives the sentence up to the region's end after those it gives the preceding regions
(encoded without special tokens); the log-probabilities come from lm-eval's own token-level
scorer (``_loglikelihood_tokens``) and are converted to bits. Regions after the first must begin
with a space and none may end with one, so a region boundary is a token boundary; a tokenizer
for which it is not is refused, naming the sentence and region.

Stimuli: ``evals/data/complement_coercion_stimuli.jsonl`` (written for this project,
same license as the project); the published stimuli are under publisher copyright. Besides this
JSONL (one sentence per line, its ``regions`` as ``{name, text}``), :func:`read_stimuli` reads
the two layouts region-by-region stimuli are shared in: a SyntaxGym test-suite JSON
(``region_meta``, ``items[].conditions[].regions[].content``) and a wide CSV/TSV sentence-frame
table (``item``, ``condition``, one column per region in order, optionally ``sentence``); their
region contents are joined with single spaces.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.spec import TaskSpec

CONDITIONS = ("coercion", "control")
STIMULI = "complement_coercion_stimuli.jsonl"
TABLE = "effects.md"
WIDE_KEYS = ("item", "condition")
WIDE_OPTIONAL = ("sentence",)  # the whole sentence, checked against its regions when present
PLOT = "effects.png"

SPECS = [
    TaskSpec(
        task_id="complement_coercion::surprisal",
        dataset="reprolm:complement_coercion_stimuli",
        split="all",
        fewshot=None,
        prompt_format="region_surprisal_after_start_token_id",
        normalizations=("sum_log2_over_region_tokens",),
        primary_metric="effect_post_noun",  # the effect is expected after the noun
        version=2,  # 2: conditioned on the start token id, not its text
        sample_threshold=10**9,
    )
]


def read_stimuli(path: Path) -> list[dict[str, Any]]:
    """Stimulus rows ``{item, condition, regions: [{name, text}]}`` (and ``where``, a row's
    place in the file, for messages) from the JSONL, a SyntaxGym suite (``.json``) or a wide
    CSV/TSV; not yet validated (:func:`check_stimuli`)."""
    from evals import sources

    path = Path(path)
    if path.suffix == ".json":
        return _syntaxgym_rows(path)
    if path.suffix in (".csv", ".tsv"):
        return _wide_rows(path)
    return sources.read_jsonl(path)


def _joined(path: str, where: str, names: list[str], contents: list[Any]) -> list[dict]:
    """Regions from bare contents: stripped, every one after the first with one leading space."""
    regions = []
    for k, (name, content) in enumerate(zip(names, contents, strict=True)):
        text = " ".join(str(content if content is not None else "").split())
        if not text:
            raise ValueError(
                f"{path}: {where}: region {name!r} is empty; every region needs text (merge an "
                "empty region into its neighbour in every row)"
            )
        regions.append({"name": name, "text": text if k == 0 else " " + text})
    return regions


def _syntaxgym_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a SyntaxGym test suite: region names from ``region_meta``; one row per item and
    condition (``condition_name``), regions ordered by ``region_number``."""
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    missing = [k for k in ("region_meta", "items") if k not in suite]
    if not isinstance(suite, dict) or missing:
        raise ValueError(
            f"{path}: a SyntaxGym test suite needs 'region_meta' and 'items' (missing: "
            f"{', '.join(missing) or 'not an object'})"
        )
    meta = {int(k): v for k, v in suite["region_meta"].items()}
    numbers = sorted(meta)
    rows = []
    for i, item in enumerate(suite["items"], 1):
        number = item.get("item_number", i)
        for condition in item.get("conditions", []):
            name = condition.get("condition_name")
            where = f"item {number} condition {name!r}"
            by_number = {int(r["region_number"]): r.get("content") for r in condition["regions"]}
            if sorted(by_number) != numbers:
                raise ValueError(
                    f"{path}: {where}: region numbers {sorted(by_number)} differ from "
                    f"region_meta's {numbers}"
                )
            rows.append({
                "item": number, "condition": name, "where": f"{path}: {where}",
                "regions": _joined(str(path), where, [meta[n] for n in numbers],
                                   [by_number[n] for n in numbers]),
            })  # fmt: skip
    return rows


def _wide_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a sentence-frame table: ``item``, ``condition``, then one column per region (in
    header order); a ``sentence`` column must equal the regions joined (spacing aside)."""
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames or []
        missing = [k for k in WIDE_KEYS if k not in header]
        names = [h for h in header if h not in WIDE_KEYS + WIDE_OPTIONAL]
        if missing or len(names) < 2:
            raise ValueError(
                f"{path}:1: a stimulus table needs columns {', '.join(WIDE_KEYS)} and at least "
                f"two region columns (missing: {', '.join(missing) or 'region columns'}; header: "
                f"{header})"
            )
        rows = []
        for row in reader:
            line = f"line {reader.line_num}"
            if None in row or any(row[h] is None for h in header):
                raise ValueError(f"{path}:{reader.line_num}: not {len(header)} fields")
            regions = _joined(str(path), line, names, [row[n] for n in names])
            sentence = row.get("sentence")
            joined = "".join(r["text"] for r in regions)
            if sentence is not None and " ".join(sentence.split()) != joined:
                raise ValueError(
                    f"{path}:{reader.line_num}: 'sentence' {sentence!r} is not its regions "
                    f"joined ({joined!r})"
                )
            rows.append({"item": row["item"], "condition": row["condition"],
                         "where": f"{path}:{reader.line_num}", "regions": regions})  # fmt: skip
    return rows


def check_stimuli(path: Path, rows: list[dict]) -> list[str]:
    """Validate the stimulus rows; return the region names (the same for every sentence)."""
    names: list[str] | None = None
    pairs: dict[Any, set[str]] = {}
    for number, row in enumerate(rows, 1):
        where = row.get("where") or f"{path}:{number}"
        if row.get("condition") not in CONDITIONS or "item" not in row:
            raise ValueError(f"{where}: needs 'item' and 'condition' (one of {CONDITIONS})")
        regions = row.get("regions")
        if not isinstance(regions, list) or len(regions) < 2:
            raise ValueError(f"{where}: 'regions' must list at least two {{name, text}} regions")
        for k, region in enumerate(regions):
            text = region.get("text", "")
            if not text.strip() or text != text.rstrip():
                raise ValueError(
                    f"{where}: region {region.get('name')!r} is empty or ends in whitespace"
                )
            if k and not text[0].isspace():
                raise ValueError(
                    f"{where}: region {region.get('name')!r} ({text!r}) must start with its "
                    "leading space, so that the region boundary is a token boundary"
                )
        row_names = [r.get("name") for r in regions]
        if names is None:
            names = row_names
        elif row_names != names:
            raise ValueError(f"{where}: regions {row_names} differ from {names} (the first row)")
        seen = pairs.setdefault(row["item"], set())
        if row["condition"] in seen:
            raise ValueError(f"{where}: item {row['item']!r} has two {row['condition']} rows")
        seen.add(row["condition"])
    unpaired = [item for item, seen in pairs.items() if len(seen) != 2]
    if unpaired or len(pairs) < 2:
        raise ValueError(
            f"{path}: every item needs one coercion and one control sentence, and the t-test "
            f"needs at least two items (unpaired: {unpaired})"
        )
    return names or []


def bits(loglik: float) -> float:
    """Surprisal in bits of a natural-log probability."""
    return -loglik / math.log(2)


def region_table(rows: list[dict]) -> dict[str, dict[Any, dict[str, float]]]:
    """``region -> item -> condition -> surprisal (bits)`` from prediction rows."""
    table: dict[str, dict[Any, dict[str, float]]] = {}
    for row in rows:
        for region in row["regions"]:
            by_item = table.setdefault(region["name"], {})
            by_item.setdefault(row["item"], {})[row["condition"]] = bits(region["loglik"])
    return table


def metrics(rows: list[dict]) -> dict[str, float]:
    """Per region: mean surprisal per condition, effect = mean(coercion - control) across items,
    and the paired t-test (``scipy.stats.ttest_rel``; t and p omitted when undefined)."""
    from scipy.stats import ttest_rel

    if not rows:
        raise ValueError("no surprisal predictions to score")
    out: dict[str, float] = {}
    for name, by_item in region_table(rows).items():
        items = sorted(by_item, key=str)
        coercion = [by_item[i]["coercion"] for i in items]
        control = [by_item[i]["control"] for i in items]
        diffs = [a - b for a, b in zip(coercion, control, strict=True)]
        out[f"mean_coercion_{name}"] = sum(coercion) / len(items)
        out[f"mean_control_{name}"] = sum(control) / len(items)
        out[f"effect_{name}"] = sum(diffs) / len(items)
        test = ttest_rel(coercion, control)
        if math.isfinite(test.statistic) and math.isfinite(test.pvalue):
            out[f"t_{name}"] = float(test.statistic)
            out[f"p_{name}"] = float(test.pvalue)
    return out


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Metrics from saved rows: item, condition and each region's name and log-likelihood."""
    keep = [
        {
            "item": r["item"],
            "condition": r["condition"],
            "regions": [{"name": g["name"], "loglik": g["loglik"]} for g in r["regions"]],
        }
        for r in rows
    ]
    return metrics(keep)


def markdown_table(values: dict[str, float], names: list[str]) -> str:
    """One line per region: mean surprisal per condition, effect, t, p."""
    lines = [
        "| region | coercion (bits) | control (bits) | effect (bits) | t | p |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        t, p = values.get(f"t_{name}"), values.get(f"p_{name}")
        lines.append(
            f"| {name} | {values[f'mean_coercion_{name}']:.3f} | "
            f"{values[f'mean_control_{name}']:.3f} | {values[f'effect_{name}']:+.3f} | "
            f"{'n/a' if t is None else f'{t:.3f}'} | {'n/a' if p is None else f'{p:.4g}'} |"
        )
    return "\n".join(lines) + "\n"


def bar_plot(rows: list[dict], names: list[str], path: Path) -> None:
    """Grouped bars per region (mean surprisal per condition, ± standard error across items);
    PNG with no software/time metadata, so equal inputs give equal bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = region_table(rows)
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    width = 0.38
    for k, condition in enumerate(CONDITIONS):
        means, errors = [], []
        for name in names:
            values = [v[condition] for v in table[name].values()]
            mean = sum(values) / len(values)
            var = sum((x - mean) ** 2 for x in values) / max(1, len(values) - 1)
            means.append(mean)
            errors.append(math.sqrt(var / len(values)))
        xs = [i + (k - 0.5) * width for i in range(len(names))]
        ax.bar(xs, means, width, yerr=errors, capsize=3, label=condition)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("surprisal (bits)")
    ax.set_title("Complement coercion: region surprisal")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def start_token(lm: Any) -> tuple[int, str]:
    """lm-eval's prefix token (bos id, else eos id) and its text, for the record."""
    token_id = lm.prefix_token_id
    if token_id is None:
        raise ValueError("the tokenizer has neither a bos nor an eos token to start a sentence on")
    return int(token_id), str(lm.tokenizer.convert_ids_to_tokens(token_id))


def encode(lm: Any, text: str) -> list[int]:
    """``text``'s token ids without special tokens (the start id is added separately)."""
    return list(lm.tok_encode(text, add_special_tokens=False)) if text else []


def region_requests(
    lm: Any, stimuli: list[dict[str, Any]], start_id: int
) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """One token-level request per region: ``context_ids`` = the start id + the tokens of the
    sentence so far, ``continuation_ids`` = the region's tokens; and where each request is."""
    requests, where = [], []
    for r, row in enumerate(stimuli):
        prefix, before = "", []
        for k, region in enumerate(row["regions"]):
            whole = encode(lm, prefix + region["text"])
            if whole[: len(before)] != before:
                raise ValueError(
                    f"item {row['item']!r} ({row['condition']}): region {region['name']!r} "
                    "does not start on a token boundary for this tokenizer; region surprisal "
                    "would split a token"
                )
            requests.append(
                {
                    "doc_id": len(requests),
                    "context": prefix,
                    "continuation": region["text"],
                    "context_ids": [start_id, *before],
                    "continuation_ids": whole[len(before) :],
                }
            )
            where.append((r, k))
            prefix, before = prefix + region["text"], whole
    return requests, where


def score_requests(lm: Any, requests: list[dict[str, Any]]) -> list[float]:
    """Natural-log likelihood of each request's continuation ids given its context ids."""
    batch = [
        ((r["context"], r["continuation"]), r["context_ids"], r["continuation_ids"])
        for r in requests
    ]
    return [float(loglik) for loglik, _ in lm._loglikelihood_tokens(batch, disable_tqdm=True)]


def scored_rows(
    stimuli: list[dict[str, Any]],
    requests: list[dict[str, Any]],
    where: list[tuple[int, int]],
    logliks: list[float],
) -> list[dict[str, Any]]:
    """The prediction rows: each sentence's regions with their loglik and surprisal."""
    rows = [
        {"doc_id": r, "item": row["item"], "condition": row["condition"], "regions": []}
        for r, row in enumerate(stimuli)
    ]
    for request, (r, k), loglik in zip(requests, where, logliks, strict=True):
        region = stimuli[r]["regions"][k]
        rows[r]["regions"].append(
            {
                "name": region["name"],
                "text": region["text"],
                "context": request["context"],
                "loglik": loglik,
                "n_tokens": len(request["continuation_ids"]),
                "surprisal_bits": bits(loglik),
            }
        )
    return rows


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Score every region of every sentence through lm-eval; write predictions, ``result.json``,
    the table (``effects.md``) and the plot (``effects.png``)."""
    from evals import generative, lmeval, results, sources
    from evals.spec import resolve
    from reprolm.canonical import canonical_json

    stimuli = read_stimuli(data)
    names = check_stimuli(data, stimuli)
    resolved = resolve(spec, data, len(stimuli))
    positions = list(range(len(stimuli)))  # row index in the data file (contamination)
    if options.limit is not None:  # whole items (both conditions), so no pair is broken
        kept = list(dict.fromkeys(row["item"] for row in stimuli))[: options.limit]
        positions = [i for i in positions if stimuli[i]["item"] in kept]
        stimuli = [stimuli[i] for i in positions]
    lm = generative.load(model_dir, options)
    start_id, start_text = start_token(lm)
    requests, where = region_requests(lm, stimuli, start_id)
    for request, (r, _) in zip(requests, where, strict=True):
        request["index"] = positions[r]
    rows = scored_rows(stimuli, requests, where, score_requests(lm, requests))

    out_dir.mkdir(parents=True, exist_ok=True)
    requests_path = out_dir / "requests.jsonl"
    requests_path.write_text("".join(canonical_json(r) + "\n" for r in requests), "utf-8")
    values = metrics(rows)
    (out_dir / TABLE).write_text(markdown_table(values, names), encoding="utf-8")
    bar_plot(rows, names, out_dir / PLOT)
    files = {
        name: {"path": path, "blake3": sources.digest(out_dir / path)}
        for name, path in (("requests", requests_path.name), ("table", TABLE), ("plot", PLOT))
    }
    # custom stimuli may name their regions otherwise: then the last region's effect is primary
    result = results.envelope(
        spec, "complement_coercion", resolved, values, instances=len(rows),
        fallback=f"effect_{names[-1]}", limit=None, model=lmeval.model_block(model_dir),
        harness=generative.harness_block(
            options, engine="lm_eval TemplateLM._loglikelihood_tokens", sentence_start=start_text,
            sentence_start_id=start_id, regions=names,
        ),
        files=files,
    )  # fmt: skip
    results.write_result(out_dir, result, rows)
    return results.load_result(out_dir)


def texts(data: Path) -> list[str]:
    """Each stimulus row's whole sentence (its regions joined): what the model reads."""
    rows = read_stimuli(data)
    check_stimuli(data, rows)
    return ["".join(region["text"] for region in row["regions"]) for row in rows]


FAMILY = Family(
    kind="complement_coercion", metrics=recompute_metrics, evaluate=evaluate, texts=texts
)
