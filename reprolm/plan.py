"""The job plan of a recipe: every job's stage, label, config, inputs, fingerprint and path.

The Snakefile builds its rules from this plan, so the DAG's wiring lives in one place, is
computed before any job starts, and can be inspected without Snakemake (``reprolm plan``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolm.evalplan import evaldata_config, pin_critics
from reprolm.fingerprint import fingerprint
from reprolm.recipe import load_recipe, stage_config
from reprolm.resources import stage_resources

ARTIFACTS_ROOT = "artifacts"
TRAINING_STAGES = ("pretrain", "sft", "dpo", "rlvr")


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
        recipe = self.recipe
        world = self._add("world", "world", stage_config(recipe, "world"), {})
        evaluate = pin_critics(stage_config(recipe, "evaluate"))
        # Spec datasets enter as data: curate decontaminates against them, evaluate reads them.
        data_config = evaldata_config(stage_config(recipe, "evaldata"), evaluate)
        spec_inputs = {}
        if data_config is not None:
            spec_inputs["evaldata"] = self._add("evaldata", "evaldata", data_config, {}).key
        curate_inputs = {"world": world.key, **spec_inputs}
        curate = self._add("curate", "curate", stage_config(recipe, "curate"), curate_inputs)
        if spec_inputs:
            spec_inputs["curate"] = curate.key
        if recipe.get("base_model", {}).get("path"):
            # Post-training from an external model: it stands in for the pretrain checkpoint.
            previous = self._add("base_model", "base_model", stage_config(recipe, "base_model"), {})
        else:
            tokenize = self._add(
                "tokenize", "tokenize", stage_config(recipe, "tokenize"), {"curate": curate.key}
            )
            previous = self._add(
                "pretrain", "pretrain", stage_config(recipe, "pretrain"), {"tokenize": tokenize.key}
            )
        checkpoints = {"pretrain": previous}
        for stage in TRAINING_STAGES[1:]:
            inputs = {"model": previous.key, "data": curate.key}
            previous = self._add(stage, stage, stage_config(recipe, stage), inputs)
            checkpoints[stage] = previous
        eval_jobs = {}
        for name in evaluate.pop("checkpoints"):
            config = {**evaluate, "checkpoint": name}
            inputs = {"model": checkpoints[name].key, "world": world.key, **spec_inputs}
            eval_jobs[name] = self._add("evaluate", name, config, inputs)
        release_inputs = {"model": previous.key}
        release_inputs.update({f"eval_{name}": job.key for name, job in eval_jobs.items()})
        self._add("release", "release", stage_config(recipe, "release"), release_inputs)

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


def load_plan(config: Mapping[str, Any] | Path) -> Plan:
    """Validate a recipe and plan its jobs."""
    return Plan(load_recipe(config))
