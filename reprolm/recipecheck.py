"""Cross-field checks of a schema-valid recipe: values that are each valid but not together.

One place for what the schema cannot say (it checks one key at a time): the model's shape,
pretraining windows against the model's positions, batches that split over the training
processes (and GRPO's generation batch into whole groups), world task ids, data the planned
stages need, a kind's sources mixed one way (weight or ratio), and paths that must exist. Each
problem names the key path and the fix; all are reported together, before any job starts. Job
code repeats some of these checks for hand-started jobs; here they stop the plan instead of
failing a job after its upstream ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reprolm.recipeyaml import RecipeError

Recipe = Mapping[str, Any]
# Post-training stages whose data is the world's unless `sources.<kind>` replaces it.
WORLD_DATA = {"sft": "sft", "dpo": "preference", "rlvr": "rlvr"}


def check_recipe(recipe: Recipe, source: str) -> None:
    """Raise RecipeError listing every cross-field problem of ``recipe`` (schema-valid)."""
    problems = [problem for check in CHECKS for problem in check(recipe)]
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise RecipeError(f"{source}: invalid recipe:\n{lines}\nFix these keys and run again.")


def _pretrains(recipe: Recipe) -> bool:
    return not recipe["base_model"].get("path")


def model_shape(recipe: Recipe) -> Iterator[str]:
    """Heads divide the width into even head sizes (RoPE); KV heads divide the heads."""
    if not _pretrains(recipe):
        return
    model = recipe["pretrain"]["model"]
    hidden, heads, kv = model["hidden_size"], model["num_heads"], model["num_kv_heads"]
    if hidden % heads:
        yield (
            f"pretrain.model.num_heads={heads} does not divide pretrain.model.hidden_size="
            f"{hidden}; pick a hidden_size that is a multiple of num_heads"
        )
    elif (hidden // heads) % 2:
        yield (
            f"pretrain.model.hidden_size / num_heads = {hidden // heads} is odd; rotary "
            "embeddings need an even head size: change hidden_size or num_heads"
        )
    if kv > heads:
        yield (
            f"pretrain.model.num_kv_heads={kv} exceeds pretrain.model.num_heads={heads}; "
            "set num_kv_heads <= num_heads (equal: multi-head attention; fewer: GQA)"
        )
    elif heads % kv:
        yield (
            f"pretrain.model.num_kv_heads={kv} does not divide pretrain.model.num_heads={heads}; "
            "pick a divisor of num_heads"
        )
    yield from _experts(recipe["pretrain"])


def _experts(pretrain: Recipe) -> Iterator[str]:
    model, moe = pretrain["model"], pretrain.get("architecture") == "olmoe"
    given = sorted(key for key in ("num_experts", "num_experts_per_tok") if key in model)
    if moe and len(given) < 2:
        missing = sorted({"num_experts", "num_experts_per_tok"} - set(given))
        yield (
            f"pretrain.model.{missing[0]}: needed by pretrain.architecture: olmoe; set it "
            "(OLMoE-1B-7B: 64 experts, 8 per token)"
        )
    elif moe and model["num_experts_per_tok"] > model["num_experts"]:
        yield (
            f"pretrain.model.num_experts_per_tok={model['num_experts_per_tok']} exceeds "
            f"pretrain.model.num_experts={model['num_experts']}; route to fewer experts"
        )
    elif not moe and given:
        yield (
            f"pretrain.model.{given[0]}: only for MoE models; set pretrain.architecture: olmoe "
            "or remove it"
        )


def pretrain_objective(recipe: Recipe) -> Iterator[str]:
    """WSD keys with ``lr_scheduler: wsd`` only (decay_fraction needed; warmup and decay fit the
    steps); router loss weights with ``architecture: olmoe`` only."""
    if not _pretrains(recipe):
        return
    pretrain = recipe["pretrain"]
    name = pretrain.get("schedule") or pretrain["lr_scheduler"]  # schedule wins when set
    wsd = name == "wsd"
    for key in ("decay_fraction", "min_lr_ratio"):
        if key in pretrain and not wsd:
            yield (
                f"pretrain.{key}: only for pretrain.lr_scheduler: wsd (it is {name}); set "
                "lr_scheduler: wsd (or schedule: wsd) or remove it"
            )
    if wsd and "decay_fraction" not in pretrain:
        yield (
            "pretrain.lr_scheduler: wsd needs pretrain.decay_fraction (the share of the steps "
            "in the final decay, e.g. 0.1)"
        )
    elif wsd:
        steps, warmup = pretrain["steps"], pretrain["warmup_steps"]
        decay = max(1, round(pretrain["decay_fraction"] * steps))
        if warmup + decay > steps:
            yield (
                f"pretrain.warmup_steps={warmup} + decay steps {decay} (decay_fraction="
                f"{pretrain['decay_fraction']} x steps={steps}) exceed pretrain.steps; lower "
                "warmup_steps or decay_fraction"
            )
    if pretrain.get("architecture") != "olmoe":
        for key in ("router_aux_loss_coef", "router_z_loss_coef"):
            if key in pretrain:
                yield (
                    f"pretrain.{key}: only for MoE models; set pretrain.architecture: olmoe "
                    "or remove it"
                )


def sequence_lengths(recipe: Recipe) -> Iterator[str]:
    """Pretraining windows fit the model's positions. (Post-training lengths may exceed them:
    rotary positions are computed, not learned, and the micro recipe relies on it.)"""
    if not _pretrains(recipe):
        return
    positions = recipe["pretrain"]["model"]["max_position_embeddings"]
    if recipe["pretrain"]["seq_len"] > positions:
        yield (
            f"pretrain.seq_len={recipe['pretrain']['seq_len']} exceeds pretrain.model."
            f"max_position_embeddings={positions}; lower seq_len or raise "
            "max_position_embeddings"
        )


def sft_packing(recipe: Recipe) -> Iterator[str]:
    """``sft.packing_strategy`` only with ``sft.packing: true``."""
    sft = recipe.get("sft") or {}
    if "packing_strategy" in sft and not sft.get("packing"):
        yield (
            f"sft.packing_strategy: {sft['packing_strategy']} has no effect without packing; set "
            "sft.packing: true or remove it"
        )


def batches(recipe: Recipe) -> Iterator[str]:
    """Each training stage's batch splits over its processes (resources.<stage>), and GRPO's
    generation batch (micro batch x processes) holds whole groups of num_generations."""
    from reprolm.deepspeed_config import DeepSpeedConfigError, batch_split
    from reprolm.recipe import stage_config
    from reprolm.resources import FAMILY_DEFAULTS, launch_resources

    for stage in ("pretrain", "midtrain", "sft", "dpo", "rlvr"):
        if stage == "pretrain" and not _pretrains(recipe):
            continue
        if stage == "midtrain" and not recipe["midtrain"].get("mix"):
            continue
        merged = {**FAMILY_DEFAULTS["training"], **recipe["resources"].get(stage, {})}
        launch = launch_resources(merged)
        world = merged["nodes"] * launch["procs_per_node"]
        config = stage_config(recipe, stage)
        try:
            micro, _ = batch_split(stage, config, world, launch["micro_batch_size"] or None)
        except DeepSpeedConfigError as error:
            yield f"{error}"
            continue
        groups = config.get("num_generations")
        if stage == "rlvr" and (micro * world) % groups:
            yield (
                f"rlvr.num_generations={groups} does not divide the generation batch of "
                f"{micro * world} completions (micro batch {micro} x {world} processes, "
                "resources.rlvr): TRL's GRPO samples whole groups; make resources.rlvr."
                "micro_batch_size x processes a multiple of num_generations"
            )


def eval_tasks(recipe: Recipe) -> Iterator[str]:
    """``evaluate.tasks``: null (every world task) or a non-empty list of known ones;
    ``evaluate.spec_data``: registered spec ids."""
    from evals.registry import SPECS
    from evals.world import TASK_IDS

    evaluate = recipe["evaluate"]
    tasks = evaluate.get("tasks")
    if tasks is not None and not tasks:
        yield (
            "evaluate.tasks: [] lists no task; list the world tasks to run, or set null (or "
            "remove the key) to run all of them"
        )
    known = {*TASK_IDS, *TASK_IDS.values()}
    unknown = [task for task in tasks or [] if task not in known]
    if unknown:
        yield (
            f"evaluate.tasks: unknown world task(s) {unknown}; known: {', '.join(sorted(known))}"
        )
    for spec in evaluate.get("spec_data") or {}:
        if spec not in SPECS:
            yield (
                f"evaluate.spec_data.{spec}: not a registered spec id; known: "
                f"{', '.join(sorted(SPECS))} (`reprolm eval list`)"
            )


def world_data(recipe: Recipe) -> Iterator[str]:
    """The world makes rows for every stage that reads them (no `sources.<kind>` instead)."""
    world, sources = recipe["world"], recipe.get("sources") or {}
    if world["fact_docs"] < world["people"]:
        yield (
            f"world.fact_docs={world['fact_docs']} is below world.people={world['people']} "
            "(every person gets one full biography); raise fact_docs"
        )
    for stage, kind in WORLD_DATA.items():
        if not sources.get(kind) and world[kind] < 1:
            yield (
                f"world.{kind}=0 leaves the {stage} stage no training rows; set world.{kind} "
                f">= 1, or give sources.{kind}"
            )


def source_mixes(recipe: Recipe) -> Iterator[str]:
    """A kind's sources are mixed one way: by ``weight`` (byte shares across the sources) or by
    ``ratio`` (a fraction of each source, open-instruct's dataset_mixer), not both."""
    for kind, entries in sorted((recipe.get("sources") or {}).items()):
        named = {
            key: [
                f"sources.{kind}[{index}] ({entry['name']})"
                for index, entry in enumerate(entries or ())
                if entry.get(key) is not None
            ]
            for key in ("weight", "ratio")
        }
        if named["weight"] and named["ratio"]:
            yield (
                f"sources.{kind}: {', '.join(named['weight'])} name a weight and "
                f"{', '.join(named['ratio'])} a ratio; a kind is mixed one way: choose weight "
                "(byte shares across its sources, every source a weight) or ratio (the fraction "
                f"of each source kept, open-instruct's dataset_mixer), and remove the other "
                f"key from every entry of sources.{kind}"
            )


def paths(recipe: Recipe) -> Iterator[str]:
    """base_model.path an HF model directory; evaldata.files entries never the repository."""
    from reprolm.codedigest import CODE_ROOT
    from reprolm.evalplan import source_path

    path = recipe["base_model"].get("path")
    if path is not None:
        where = source_path(path) if path else None
        if where is None or not where.is_dir():
            what = "is empty" if not path else ("is a file" if where.exists() else "does not exist")
            yield (
                f"base_model.path: {path!r} {what}; point it at an HF model directory "
                "(config.json, *.safetensors, tokenizer), or set null to pretrain"
            )
        elif not (where / "config.json").is_file():
            yield (
                f"base_model.path: {path} has no config.json; point it at an HF model "
                "directory (config.json, *.safetensors, tokenizer)"
            )
    root = CODE_ROOT.resolve()
    for name, file in sorted((recipe["evaldata"].get("files") or {}).items()):
        where = source_path(file).resolve() if file.strip() else root
        if where == root or where in root.parents:
            yield (
                f"evaldata.files.{name}: {file!r} is the repository (or a folder above it), "
                "not a dataset; point it at the dataset's file or folder, or set null to drop it"
            )


def external(recipe: Recipe) -> Iterator[str]:
    """``evaluate.external``: each responses path exists, each task is a registered generative
    spec, and the spec datasets are imported (the evaldata job runs only with evaluate.specs)."""
    from reprolm.externalplan import KEY, check_entry, entries

    found = entries(recipe)
    for name, entry in sorted(found.items()):
        yield from check_entry(name, entry)
        if name in recipe["evaluate"]["checkpoints"]:
            yield (
                f"{KEY}.{name}: named like a checkpoint the recipe evaluates; the comparison "
                "table would show both in one column: rename the entry"
            )
    if found and not recipe["evaluate"].get("specs"):
        yield (
            f"{KEY}: scoring needs the evaldata job, which runs only when evaluate.specs lists a "
            "spec; list one (e.g. the external entries' tasks) in evaluate.specs"
        )


def step_checkpoints(recipe: Recipe) -> Iterator[str]:
    """``pretrain.save_steps`` below ``pretrain.steps``; each ``pretrain@step<N>`` of
    ``evaluate.checkpoints`` a step the pretrain job saves (and a recipe that pretrains)."""
    from evals.steps import parse, saved_steps

    pretrain = recipe["pretrain"]
    late = [step for step in pretrain.get("save_steps") or [] if step >= pretrain["steps"]]
    if late and _pretrains(recipe):
        yield (
            f"pretrain.save_steps: {late} not below pretrain.steps={pretrain['steps']}; the last "
            "step is the artifact's model/ itself (evaluate it as `pretrain`): list earlier steps"
        )
    saved = saved_steps(pretrain)
    for index, name in enumerate(recipe["evaluate"]["checkpoints"]):
        step = parse(name)[1]
        if step is None:
            continue
        where = f"evaluate.checkpoints[{index}]"
        if not _pretrains(recipe):
            yield (
                f"{where}: {name} names a pretraining step, but base_model.path replaces "
                "pretraining; evaluate `pretrain` (the base model) instead"
            )
        elif step not in saved:
            have = f"saved steps: {saved}" if saved else "the pretrain job saves no steps"
            yield (
                f"{where}: {name}: pretrain does not save step {step} ({have}); add {step} to "
                f"pretrain.save_steps, or set pretrain.save_every to a divisor of {step}"
            )


def midtrain_and_soup(recipe: Recipe) -> Iterator[str]:
    """midtrain and soup start from the pretrain checkpoint (no base_model); soup's weights one
    per checkpoint, summing above 0; its pretraining steps saved; midtrain planned if named."""
    from evals.steps import parse, saved_steps

    midtrain = bool(recipe["midtrain"].get("mix"))
    soup = recipe["soup"]
    for name, key in (("midtrain", "mix"), ("soup", "checkpoints")):
        given = _given_keys(name, recipe[name])
        if given and not recipe[name].get(key):
            yield (
                f"{name}: the block sets {', '.join(given)} but not {name}.{key}, and the stage "
                f"is planned only with {key}: set {name}.{key} (docs/stages/{name}.md), or "
                "remove the block"
            )
    for name, planned in (("midtrain", midtrain), ("soup", bool(soup.get("checkpoints")))):
        if planned and not _pretrains(recipe):
            yield (
                f"{name}: base_model.path replaces pretraining, and {name} starts from the "
                f"pretrain checkpoint; remove the {name} block or base_model.path"
            )
    if midtrain and sum(recipe["midtrain"]["mix"].values()) <= 0:
        yield "midtrain.mix: the ratios sum to 0; give at least one source a ratio above 0"
    names = soup.get("checkpoints") or []
    weights = soup.get("weights")
    if weights is not None and names and len(weights) != len(names):
        yield (
            f"soup.weights: {len(weights)} weights for {len(names)} soup.checkpoints; give one "
            "weight per checkpoint, in the same order"
        )
    elif weights is not None and names and sum(weights) <= 0:
        yield "soup.weights: the weights sum to 0; give at least one a weight above 0"
    for index, name in enumerate(names):
        stage, step = parse(name)
        if stage == "midtrain" and not midtrain:
            yield (
                f"soup.checkpoints[{index}]: midtrain is not planned (set midtrain.mix, "
                "docs/stages/midtrain.md), or remove it"
            )
        if step is not None and _pretrains(recipe) and step not in saved_steps(recipe["pretrain"]):
            yield (
                f"soup.checkpoints[{index}]: {name}: pretrain does not save step {step}; add it "
                "to pretrain.save_steps"
            )


def _given_keys(stage: str, block: Recipe) -> list[str]:
    """Keys of a (default-filled) block that differ from the schema's defaults."""
    from reprolm.recipe import stage_schema

    properties = stage_schema(stage)["properties"]
    return sorted(
        key
        for key, value in block.items()
        if key not in properties or properties[key].get("default", object()) != value
    )


CHECKS: tuple[Callable[[Recipe], Iterator[str]], ...] = (
    model_shape,
    pretrain_objective,
    sequence_lengths,
    sft_packing,
    batches,
    eval_tasks,
    world_data,
    source_mixes,
    paths,
    external,
    step_checkpoints,
    midtrain_and_soup,
)
