"""The job plan of a recipe: every job's stage, label, config, inputs, fingerprint and path.

The Snakefile builds its rules from this plan, so the DAG's wiring lives in one place, is
computed before any job starts, and can be inspected without Snakemake (``reprolm plan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals import steps
from reprolm.evalplan import evaldata_config, pin_critics
from reprolm.externalplan import external_jobs
from reprolm.fanout import shard_jobs, source_jobs
from reprolm.fingerprint import fingerprint
from reprolm.pins import pin_tokenizer
from reprolm.recipe import RecipeError, load_recipe, stage_config
from reprolm.resources import stage_resources
from reprolm.stagetable import (
    CHECKPOINT,
    CHECKPOINT_STAGES,
    EACH,
    EXTERNAL,
    LAST_CHECKPOINT,
    LISTED,
    OPT_IN_STAGES,
    RELEASED_STAGES,
    SAME_LABEL,
    SHARDS,
    SOURCES,
    STAGE_TABLE,
    TRAINING_STAGES,
    Stage,
    stage,
)

ARTIFACTS_ROOT = "artifacts"
__all__ = ["ARTIFACTS_ROOT", "TRAINING_STAGES", "Job", "Plan", "load_plan"]


@dataclass(frozen=True)
class Job:
    """One job of the DAG; ``inputs`` maps an input name to the key of the job producing it."""

    stage: str
    label: str
    config: dict[str, Any] = field(hash=False)
    inputs: dict[str, str] = field(hash=False)
    fingerprint: str = ""

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.label}"

    @property
    def artifact_dir(self) -> str:
        return f"{ARTIFACTS_ROOT}/{self.stage}/{self.label}-{self.fingerprint}"

    @property
    def manifest(self) -> str:
        return f"{self.artifact_dir}/provenance.json"

    @property
    def log(self) -> str:
        return f"logs/{self.stage}/{self.label}-{self.fingerprint}.log"


class Plan:
    """All jobs of a recipe, in dependency order."""

    def __init__(self, recipe: Mapping[str, Any]):
        self.recipe = dict(recipe)
        self.jobs: dict[str, Job] = {}
        self._build()

    def _add(self, stage: str, label: str, config: dict[str, Any], inputs: dict[str, str]) -> Job:
        input_fingerprints = {name: self.jobs[key].fingerprint for name, key in inputs.items()}
        job = Job(stage, label, config, inputs, fingerprint(stage, config, input_fingerprints))
        self.jobs[job.key] = job
        return job

    def _build(self) -> None:
        """Walk the stage table: each planned stage's jobs, with inputs wired as it says."""
        for entry in STAGE_TABLE:
            if self._planned(entry):
                for label, config in self._job_configs(entry):
                    self._add(entry.name, label, config, self._inputs(entry, label))

    def _job_configs(self, entry: Stage) -> list[tuple[str, dict[str, Any]]]:
        """(label, config) of each job of a planned stage."""
        if entry.fan_out == SOURCES:  # one job per `sources` entry
            return source_jobs(self.recipe)
        if entry.fan_out == EXTERNAL:  # one job per `evaluate.external` entry
            return external_jobs(self.recipe, entry.name)
        config = self._config(entry)
        if config is None:
            return []
        if entry.fan_out == SHARDS:  # one job per batch of curate (tokenize) shards
            return shard_jobs(config, entry.name)
        if entry.per_checkpoint:  # evaluate: one job per listed checkpoint, labelled by it
            # (a pretraining step `pretrain@step100` is labelled pretrain_step100: evals/steps.py)
            names = config.pop("checkpoints")
            return [(steps.label(name), {**config, "checkpoint": name}) for name in names]
        return [(entry.name, config)]

    def _planned(self, entry: Stage) -> bool:
        """Whether the recipe runs ``entry``: its ``when`` key is set, no replacement runs."""
        if entry.when is not None:
            value = _recipe_value(self.recipe, entry.when)
            if not value or (isinstance(value, int) and value < entry.when_at_least):
                return False
        replacement = entry.replaced_by
        return replacement is None or not self._planned(stage(replacement))

    def _config(self, entry: Stage) -> dict[str, Any] | None:
        """The job config: the stage's block (+ seed, threads), plus the keys the plan sets."""
        config = stage_config(self.recipe, entry.config_from or entry.name)
        if entry.name == "evaldata":  # the spec datasets' files and digests (None: no specs)
            return evaldata_config(config, stage_config(self.recipe, "evaluate"))
        if entry.name == "evaluate":  # critic models' digests pinned (evaluate.critics)
            config = pin_critics(config)
            config.pop("external", None)  # the responses and score jobs' (no model evaluated)
        # Job code knows no stage table: what it needs of it comes in the config (release's order;
        # an opt-in stage only when planned, so a recipe without its block keeps its release).
        shared = {"checkpoints": CHECKPOINT_STAGES, "stages": RELEASED_STAGES}
        config.update({key: self._listed(shared[key]) for key in entry.plan_keys if key in shared})
        # A given tokenizer's content pinned; windows at pretrain's (tokenize_shard omits them).
        if "tokenize" in (entry.name, entry.config_from):
            config = pin_tokenizer(config)
        if "tokenize" in (entry.name, entry.config_from) or entry.name == "midtrain":
            config["seq_len"] = stage_config(self.recipe, "pretrain")["seq_len"]
        return config

    def _listed(self, names: tuple[str, ...]) -> list[str]:
        """``names`` less the opt-in stages this recipe does not plan."""
        return [name for name in names if name not in OPT_IN_STAGES or self._planned(stage(name))]

    def _producer(self, name: str) -> Job:
        """The job of stage ``name``, or of the stage standing in for it (base_model)."""
        jobs = self.by_stage(name)
        if not jobs and stage(name).replaced_by is not None:
            jobs = self.by_stage(stage(name).replaced_by)
        if len(jobs) != 1:
            raise KeyError(f"stage {name!r} has {len(jobs)} jobs in the plan; expected one")
        return jobs[0]

    def _inputs(self, entry: Stage, label: str | None = None) -> dict[str, str]:
        """Input name -> producing job key, per the table's wiring of ``entry`` (``label``: the
        job's, which names its checkpoint, or its input of the same label)."""
        inputs: dict[str, str] = {}
        for spec in entry.inputs:
            if spec.when is not None and not self.by_stage(spec.when):
                continue
            if spec.kind == EACH:
                inputs.update({spec.name + job.label: job.key for job in self.by_stage(spec.stage)})
                continue
            if spec.kind == LISTED:  # soup: each listed checkpoint's job (a step: its stage's)
                names = self.recipe[entry.name]["checkpoints"]
                for name in names:
                    listed = steps.parse(name)[0]
                    inputs[spec.name + listed] = self._checkpoint_job(entry.name, listed).key
                continue
            if spec.kind == CHECKPOINT:  # a step's weights lie in its stage's artifact
                producer = self._checkpoint_job(entry.name, steps.parse(label)[0])
            elif spec.kind == SAME_LABEL:
                producer = self.get(spec.stage, label)
            elif spec.kind == LAST_CHECKPOINT:
                producer = self._producer(CHECKPOINT_STAGES[-1])
            else:
                planned = [name for name in spec.instead if self.by_stage(name)]
                producer = self._producer(planned[0] if planned else spec.stage)
            inputs[spec.name] = producer.key
        return inputs

    def _checkpoint_job(self, reader: str, name: str) -> Job:
        """The job of checkpoint stage ``name`` that ``reader`` (evaluate, soup) names; a stage
        of an opt-in block the recipe lacks is a recipe error."""
        if name in OPT_IN_STAGES and not self.by_stage(name):
            key = stage(name).when
            raise RecipeError(
                f"{reader}.checkpoints names {name}, which this recipe does not plan: set {key} "
                f"(docs/stages/{name}.md), or remove {name} from {reader}.checkpoints"
            )
        return self._producer(name)

    def get(self, stage: str, label: str) -> Job:
        """The job of ``stage`` with ``label``; the error lists the labels that exist."""
        try:
            return self.jobs[f"{stage}/{label}"]
        except KeyError:
            labels = sorted(job.label for job in self.jobs.values() if job.stage == stage)
            raise KeyError(f"no {stage} job labelled {label!r}; labels: {labels}") from None

    def by_stage(self, stage: str) -> list[Job]:
        return [job for job in self.jobs.values() if job.stage == stage]

    def input_dirs(self, job: Job) -> dict[str, str]:
        """Input name -> artifact directory of the producing job."""
        return {name: self.jobs[key].artifact_dir for name, key in job.inputs.items()}

    def input_manifests(self, job: Job) -> dict[str, str]:
        """Input name -> manifest path of the producing job (what Snakemake waits for)."""
        return {name: self.jobs[key].manifest for name, key in job.inputs.items()}

    def resources(self, job: Job | str) -> dict[str, Any]:
        """Snakemake resources of a job (or stage): family defaults + ``resources.<stage>``.

        Kept apart from ``job.config`` so they never reach a fingerprint.
        """
        stage = job if isinstance(job, str) else job.stage
        return stage_resources(stage, self.recipe.get("resources", {}).get(stage))

    @property
    def release(self) -> Job:
        return self.by_stage("release")[0]

    def targets(self) -> list[str]:
        """What ``rule all`` asks for: every job's manifest."""
        return [job.manifest for job in self.jobs.values()]


def _recipe_value(recipe: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted key path of the recipe (None when a key is missing)."""
    value: Any = recipe
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def load_plan(config: Mapping[str, Any] | Path, source: str | None = None) -> Plan:
    """Validate a recipe and plan its jobs; every RecipeError names the recipe (``source``, or
    the file), including those found while planning (sources, datasets, tokenizer)."""
    name = str(config) if isinstance(config, Path) else source
    recipe = load_recipe(config, source=name)
    try:
        return Plan(recipe)
    except RecipeError as error:
        if name is None or str(error).startswith(name):
            raise
        error.args = (f"{name}: {error}", *error.args[1:])
        raise
