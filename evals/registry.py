"""The registry of task specs, by OLMES id."""

from __future__ import annotations

from evals.spec import FewShotSet, TaskSpec

RC_NORMS = ("raw", "per_token", "per_char", "uncond")
MC_NORMS = ("raw",)
ANSWER_CONTEXT = "Answer:"  # OLMES' unconditioned context for PMI normalization

ARC_EASY_SHOTS = FewShotSet("olmes_arc_easy_fewshot.jsonl", 5, "OLMES:ARC-Easy")
ARC_CHALLENGE_SHOTS = FewShotSet("olmes_arc_challenge_fewshot.jsonl", 5, "OLMES:ARC-Challenge")
GSM8K_SHOTS = FewShotSet("tulu_gsm8k_8shot_cot.jsonl", 8, "open-instruct:gsm8k-8shot-cot")


def _arc(task: str, fmt: str, dataset: str, shots: FewShotSet, rc_primary: str) -> TaskSpec:
    rc = fmt == "rc"
    return TaskSpec(
        task_id=f"{task}:{fmt}::olmes",
        dataset=dataset,
        split="test",
        fewshot=shots,
        prompt_format=f"olmes_arc_{fmt}",
        normalizations=RC_NORMS if rc else MC_NORMS,
        primary_metric=rc_primary if rc else "acc_raw",
        version=1,
        uncond_context=ANSWER_CONTEXT if rc else None,
    )


SPECS: dict[str, TaskSpec] = {
    spec.task_id: spec
    for spec in (
        _arc("arc_easy", "rc", "allenai/ai2_arc:ARC-Easy", ARC_EASY_SHOTS, "acc_per_char"),
        _arc("arc_easy", "mc", "allenai/ai2_arc:ARC-Easy", ARC_EASY_SHOTS, "acc_per_char"),
        _arc(
            "arc_challenge",
            "rc",
            "allenai/ai2_arc:ARC-Challenge",
            ARC_CHALLENGE_SHOTS,
            "acc_uncond",
        ),
        _arc(
            "arc_challenge",
            "mc",
            "allenai/ai2_arc:ARC-Challenge",
            ARC_CHALLENGE_SHOTS,
            "acc_uncond",
        ),
        # Tulu 3's answer rule (evals/gsm8k.py names the OLMES / open-instruct functions).
        TaskSpec(
            task_id="gsm8k:cot::tulu",
            dataset="openai/gsm8k:main",
            split="test",
            fewshot=GSM8K_SHOTS,
            prompt_format="tulu_gsm8k_cot_chat",
            normalizations=("tulu_last_number_string",),
            primary_metric="exact_match",
            version=2,
        ),
        # The same prompt with our earlier rule ("answer is" N, else the last number; numeric).
        TaskSpec(
            task_id="gsm8k:cot::answer_is",
            dataset="openai/gsm8k:main",
            split="test",
            fewshot=GSM8K_SHOTS,
            prompt_format="tulu_gsm8k_cot_chat",
            normalizations=("answer_is_else_last_number",),
            primary_metric="exact_match",
            version=1,
        ),
        TaskSpec(
            task_id="ifeval::tulu",
            dataset="google/IFEval:input_data.jsonl",
            split="train",  # IFEval's only split (541 prompts); the fixture holds 300 of them
            fewshot=None,
            prompt_format="ifeval_prompt_as_user_turn",
            normalizations=("strict", "loose_8_variants"),
            primary_metric="prompt_level_loose_acc",  # what Tulu 3 reports
            version=1,
        ),
    )
}


ALIASES: dict[str, str] = {}  # short names accepted by get_spec, e.g. "proc2pddl"


def get_spec(task_id: str) -> TaskSpec:
    """The registered spec (or an alias's); the error lists every known id."""
    try:
        return SPECS[ALIASES.get(task_id, task_id)]
    except KeyError:
        raise KeyError(
            f"unknown evaluation task {task_id!r}; known: {', '.join(sorted(SPECS))}"
        ) from None


# research task pack (issue 6)
from evals import (  # noqa: E402
    coercion,
    delta_rot,
    digital_socrates,
    hellaswag,
    olmes_tasks,
    proc2pddl,
    simpletom,
    worldspecs,
    worldvaluesbench,
)

for _module in (simpletom, digital_socrates, coercion, worldvaluesbench, delta_rot):
    SPECS.update({s.task_id: s for s in _module.SPECS})
SPECS.update(proc2pddl.SPECS)
ALIASES["proc2pddl"] = proc2pddl.DEFAULT
SPECS.update({s.task_id: s for s in hellaswag.SPECS})
SPECS.update({s.task_id: s for s in worldspecs.SPECS})  # the world's eval sets (regime tiny)
SPECS.update({s.task_id: s for s in olmes_tasks.SPECS})  # OLMES: the other 7 MC tasks
from evals import bbh, drop, minerva_math  # noqa: E402  (Tulu 3 suite: MATH, BBH, DROP)

SPECS.update({s.task_id: s for m in (minerva_math, bbh, drop) for s in m.SPECS})
# Tulu 3 judged / knowledge / safety tasks (issue 14)
from evals import alpaca_eval, mmlu_tulu, popqa, safety, truthfulqa  # noqa: E402

for _module in (alpaca_eval, safety, mmlu_tulu, popqa, truthfulqa):
    SPECS.update({s.task_id: s for s in _module.SPECS})
from evals import humaneval  # noqa: E402

SPECS.update({s.task_id: s for s in humaneval.SPECS})  # HumanEval, HumanEval+ (Tulu 3)

# base-model variants of the chat-formatted generative specs (issue 14)
from evals import basevariants  # noqa: E402

_BASE = basevariants.derive(SPECS)
BASE_VARIANTS: dict[str, str] = {
    task_id: basevariants.variant_id(task_id)
    for task_id in SPECS
    if basevariants.variant_id(task_id) in _BASE and task_id not in _BASE
}
SPECS.update(_BASE)
