"""The stage table: every stage of the DAG as data, in the order the pipeline runs.

One entry per stage says what it reads (and how each input is wired), which resource and image
family it belongs to, whether it produces a checkpoint, how its job starts and how reproducible
it is. The plan (``reprolm/plan.py``) walks this table to wire the jobs, the Snakemake rules
(``workflow/rules/stages.smk``) are generated from it, and resources, containers, the recipe
schema, tracking and the run summary read their stage lists from it. Job code (``stages/``)
never imports it: what a job needs to know (say, release's checkpoint order) the plan puts into
the job's config.

Adding a stage: an entry here, its code in ``stages/<name>/`` (``__main__.py`` calling
``reprolm.runner.main``), its config schema ``config/schema/<name>.schema.yaml`` and its tests in
``tests/stages/test_<name>.py`` (docs/stages/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

# How an input is wired (Input.kind).
JOB = "job"  # the one job of `stage` (or of the stage replacing it, see Stage.replaced_by)
CHECKPOINT = "checkpoint"  # the checkpoint a per-checkpoint job is labelled with
LAST_CHECKPOINT = "last_checkpoint"  # the job of the last checkpoint stage of the plan
EACH = "each"  # one input per job of `stage`, named `<name><label>` (eval_sft, ...)
SAME_LABEL = "same_label"  # the job of `stage` labelled as this one (score's responses)
# One input per checkpoint its block's `checkpoints` lists, named `<name><stage>` (soup's
# `model_midtrain`, `model_pretrain`; a pretraining step `pretrain@step100` reads pretrain's job).
LISTED = "listed"
InputKind = Literal["job", "checkpoint", "last_checkpoint", "each", "same_label", "listed"]

# How a job starts (Stage.launcher).
STAGE_LAUNCHER = "stage"  # python -m stages.<name> <job arguments>
TRAINING_LAUNCHER = "training"  # python -m reprolm.launch ... -- stages.<name> (torchrun, srun)
Launcher = Literal["stage", "training"]

# How a stage's jobs fan out (Stage.fan_out).
SOURCES = "sources"  # one job per entry of the recipe's `sources`, labelled <kind>.<name>
SHARDS = "shards"  # one job per batch of `<block>.shards`, labelled <first>_<last>
EXTERNAL = "external"  # one job per entry of `evaluate.external`, labelled by its name
FanOut = Literal["sources", "shards", "external"]

BITWISE: Mapping[str, Any] = MappingProxyType({"level": "bitwise"})


@dataclass(frozen=True)
class Input:
    """One input of a stage's jobs: its name in the job's ``inputs`` and where it comes from."""

    name: str
    stage: str | None = None  # the producing stage (None for CHECKPOINT / LAST_CHECKPOINT)
    kind: InputKind = JOB
    when: str | None = None  # wired only when this stage has a job in the plan
    # JOB inputs: stages whose job, when planned, is wired instead of `stage` (the first planned
    # wins): sft's model is soup's, else midtrain's, else pretrain's.
    instead: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One stage: its wiring, families, launcher and reproducibility level."""

    name: str
    resources: str  # resource family: reprolm/resources.py FAMILY_DEFAULTS
    image: str  # image family: containers/<image>/Dockerfile, recipe `containers.<image>`
    inputs: tuple[Input, ...] = ()
    checkpoint: bool = False  # produces a model evaluate can take (evaluate.checkpoints)
    launcher: Launcher = STAGE_LAUNCHER
    reproducibility: Mapping[str, Any] = field(default_factory=lambda: BITWISE, hash=False)
    when: str | None = None  # planned only when this recipe key (dotted path) is set
    replaced_by: str | None = None  # not planned when that stage is; it stands in for this one
    per_checkpoint: bool = False  # one job per `checkpoints` entry of its block, labelled by it
    plan_keys: tuple[str, ...] = ()  # config keys the plan sets (not recipe keys)
    # Fan-out: one job per `sources` entry (SOURCES) or per batch of `<config_from>.shards`
    # (SHARDS: curate_shard over `curate.shards`, tokenize_shard over `tokenize.shards`).
    fan_out: FanOut | None = None
    # The recipe block its config comes from when not its own (curate_shard: `curate`); None
    # with a fan-out over sources: the entries of `sources` are the configs, no block.
    config_from: str | None = None
    config_omits: tuple[str, ...] = ()  # keys of that block its jobs do not get
    when_at_least: int = 1  # with `when`: planned only when that value is at least this
    # An opt-in stage (midtrain, soup): in release's checkpoint and stage order only when planned,
    # and not among evaluate.checkpoints' default, so a recipe without its block plans as before.
    opt_in: bool = False


def _training(name: str, inputs: tuple[Input, ...], **extra: Any) -> Stage:
    return Stage(
        name, "training", "train", inputs, checkpoint=True, launcher=TRAINING_LAUNCHER, **extra
    )


def _post_training(name: str, previous: str, instead: tuple[str, ...] = ()) -> Stage:
    """SFT, DPO, RLVR: the previous checkpoint as `model`, curated data as `data`."""
    return _training(name, (Input("model", previous, instead=instead), Input("data", "curate")))


# With spec datasets (evaluate.specs) curate decontaminates against them and evaluate reads them.
SPEC_DATA = (Input("evaldata", "evaldata", when="evaldata"),)

# A recipe's own corpora (`sources`): one source artifact per entry, read by the curate jobs.
SOURCE_DATA = (Input("source_", "source", kind=EACH),)

STAGE_TABLE: tuple[Stage, ...] = (
    Stage("world", "data", "data"),
    Stage("evaldata", "data", "data", when="evaluate.specs"),
    Stage("source", "data", "data", when="sources", fan_out=SOURCES),
    # curate.shards > 1: the shards are curated in batches of jobs, `curate` gathers them; with
    # one shard, `curate` curates it itself (same payload either way).
    Stage(
        "curate_shard",
        "data",
        "data",
        (Input("world", "world"), *SOURCE_DATA, *SPEC_DATA),
        when="curate.shards",
        when_at_least=2,
        fan_out=SHARDS,
        config_from="curate",
        # Read by the gather only: changing one reruns the gather, not the (costly) shards.
        config_omits=("dedup", "decontaminate", "reject_rate_max", "shards_per_job"),
        plan_keys=("first", "last"),
    ),
    Stage(
        "curate",
        "data",
        "data",
        (
            Input("world", "world"),
            *SOURCE_DATA,
            *SPEC_DATA,
            Input("shard_", "curate_shard", kind=EACH),
        ),
    ),
    # tokenize.shards > 1 (a given tokenizer only): the documents are encoded in batches of
    # jobs, `tokenize` writes the token shards from them (same payload for any shard count).
    Stage(
        "tokenize_shard",
        "data",
        "data",
        (Input("curate", "curate"),),
        when="tokenize.shards",
        when_at_least=2,
        replaced_by="base_model",
        fan_out=SHARDS,
        config_from="tokenize",
        # Read by the gather only (or ignored with a given tokenizer): changing one reruns the
        # gather, not the encoding.
        config_omits=(
            "vocab_size",
            "min_frequency",
            "model_max_length",
            "shard_tokens",
            "mask_checks",
            "seq_len",
            "epochs",
            "shards_per_job",
        ),
        plan_keys=("first", "last"),
    ),
    # Its windows (the data-order file) are cut at pretrain.seq_len, which the plan copies in.
    Stage(
        "tokenize",
        "data",
        "data",
        (Input("curate", "curate"), Input("shard_", "tokenize_shard", kind=EACH)),
        replaced_by="base_model",
        plan_keys=("seq_len",),
    ),
    # Post-training from an external model: it stands in for tokenize + the pretrain checkpoint.
    Stage("base_model", "data", "data", when="base_model.path"),
    _training("pretrain", (Input("tokenize", "tokenize"),), replaced_by="base_model"),
    # OLMo 2's mid-training (Dolmino): the pretrain model annealed (linear decay to 0) on a mix
    # of the tokenize artifact's sources; planned when the recipe sets `midtrain.mix`. It reads
    # curate's pretraining documents for their sources, in stream order (docs/stages/midtrain.md).
    _training(
        "midtrain",
        (Input("model", "pretrain"), Input("tokenize", "tokenize"), Input("curate", "curate")),
        when="midtrain.mix",
        opt_in=True,
        plan_keys=("seq_len",),
    ),
    # The average of several checkpoints' weights (OLMo 2 souped its anneal runs); planned when
    # the recipe sets `soup.checkpoints`. Not trained: the plain stage launcher, the data family's
    # resources (raise resources.soup.mem_mb for a large model), the train image (torch).
    Stage(
        "soup",
        "data",
        "train",
        (Input("model_", kind=LISTED),),
        checkpoint=True,
        when="soup.checkpoints",
        opt_in=True,
    ),
    # sft starts from the latest of soup > midtrain > pretrain that the recipe plans.
    _post_training("sft", "pretrain", instead=("soup", "midtrain")),
    _post_training("dpo", "sft"),
    _post_training("rlvr", "dpo"),
    Stage(
        "evaluate",
        "evaluate",
        "eval",
        (
            Input("model", kind=CHECKPOINT),
            Input("world", "world"),
            *SPEC_DATA,
            Input("curate", "curate", when="evaldata"),  # the decontamination report
        ),
        per_checkpoint=True,
        plan_keys=("checkpoint",),
    ),
    Stage(
        "release",
        "release",
        "eval",
        (Input("model", kind=LAST_CHECKPOINT), Input("eval_", "evaluate", kind=EACH)),
        plan_keys=("checkpoints", "stages"),
    ),
    # Outputs produced elsewhere (`evaluate.external`: an API model's responses): each file a
    # source artifact (hashed, the user's `produced_by` in its config), then scored against the
    # spec's evaldata dataset. After release, which never reads them (its `stages` order ends
    # with itself), so a recipe without the key plans exactly what it did before.
    Stage(
        "responses",
        "data",
        "eval",
        when="evaluate.external",
        fan_out=EXTERNAL,
        plan_keys=("digest",),
    ),
    Stage(
        "score",
        "data",
        "eval",
        (Input("responses", "responses", kind=SAME_LABEL), *SPEC_DATA),
        when="evaluate.external",
        fan_out=EXTERNAL,
        plan_keys=("dataset",),
    ),
)

BY_NAME: dict[str, Stage] = {entry.name: entry for entry in STAGE_TABLE}
STAGE_NAMES: tuple[str, ...] = tuple(BY_NAME)
# What a release's lineage can hold: the stages up to it (its `stages` config, in order).
RELEASED_STAGES: tuple[str, ...] = STAGE_NAMES[: STAGE_NAMES.index("release") + 1]
CHECKPOINT_STAGES: tuple[str, ...] = tuple(s.name for s in STAGE_TABLE if s.checkpoint)
OPT_IN_STAGES: tuple[str, ...] = tuple(s.name for s in STAGE_TABLE if s.opt_in)
# evaluate.checkpoints' default: every checkpoint stage a recipe plans without opt-in blocks.
DEFAULT_CHECKPOINTS: tuple[str, ...] = tuple(s for s in CHECKPOINT_STAGES if s not in OPT_IN_STAGES)
# What soup can average: the checkpoint stages before it (sft reads the soup).
SOUP_SOURCES: tuple[str, ...] = tuple(
    s for s in CHECKPOINT_STAGES if STAGE_NAMES.index(s) < STAGE_NAMES.index("soup")
)
TRAINING_STAGES: tuple[str, ...] = tuple(
    s.name for s in STAGE_TABLE if s.launcher == TRAINING_LAUNCHER
)


def has_recipe_block(name: str) -> bool:
    """Whether the recipe has a block named after the stage (not for fan-outs over `sources`
    or stages configured from another stage's block)."""
    entry = stage(name)
    return entry.config_from is None and entry.fan_out not in (SOURCES, EXTERNAL)


def stage(name: str) -> Stage:
    """The table entry of ``name``; the error lists the stages that exist."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no stage {name!r}; stages: {', '.join(STAGE_NAMES)}") from None


def families(attribute: Literal["resources", "image"]) -> dict[str, tuple[str, ...]]:
    """Family -> its stages (table order), by resource (``resources``) or image (``image``)."""
    grouped: dict[str, tuple[str, ...]] = {}
    for entry in STAGE_TABLE:
        family = getattr(entry, attribute)
        grouped[family] = (*grouped.get(family, ()), entry.name)
    return grouped


def reproducibility(name: str) -> dict[str, Any]:
    """The reproducibility a stage's jobs declare in their manifests."""
    return dict(stage(name).reproducibility)
