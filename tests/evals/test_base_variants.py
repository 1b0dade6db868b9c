"""Base-model variants: OLMES's plain GSM8K prompt, the choice by checkpoint kind, and a base
model's evaluate jobs recording (and the comparison table showing) the variant they ran."""

from __future__ import annotations

import json
import shutil

import pytest

from evals import basevariants, collect, compare, gsm8k, results, sources
from evals.jobs import run_jobs
from evals.registry import BASE_VARIANTS, get_spec
from reprolm.recipe import validate_stage_config
from stages.evaluate import document
from stages.evaluate.specs import add_variant, spec_jobs
from tests.evals.conftest import GSM8K_SHOTS, ROOT

GSM8K_FIXTURE = ROOT / "tests" / "fixtures" / "gsm8k" / "test_sample.jsonl"

# gsm8k::olmes on the first GSM8K test item, written out by hand from the OLMES format
# ("Question: <q>\nAnswer: <cot>" per exemplar, blocks joined by a blank line).
OLMES_PROMPT = (
    "Question: There are 15 trees in the grove. Grove workers will plant trees in the grove "
    "today. After they are done, there will be 21 trees. How many trees did the grove workers "
    "plant today?\nAnswer: There are 15 trees originally. Then there were 21 trees after some "
    "more were planted. So there must have been 21 - 15 = 6. So the answer is 6.\n\n"
    "Question: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are "
    "in the parking lot?\nAnswer: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. "
    "So the answer is 5.\n\n"
    "Question: Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do "
    "they have left in total?\nAnswer: Originally, Leah had 32 chocolates. Her sister had 42. "
    "So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. So the answer "
    "is 39.\n\n"
    "Question: Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. "
    "How many lollipops did Jason give to Denny?\nAnswer: Jason started with 20 lollipops. Then "
    "he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. So the answer is 8.\n\n"
    "Question: Shawn has five toys. For Christmas, he got two toys each from his mom and dad. "
    "How many toys does he have now?\nAnswer: Shawn started with 5 toys. If he got 2 toys each "
    "from his mom and dad, then that is 4 more toys. 5 + 4 = 9. So the answer is 9.\n\n"
    "Question: There were nine computers in the server room. Five more computers were installed "
    "each day, from monday to thursday. How many computers are now in the server room?\n"
    "Answer: There were originally 9 computers. For each of 4 days, 5 more computers were "
    "added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. So the answer is 29.\n\n"
    "Question: Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he "
    "lost 2 more. How many golf balls did he have at the end of wednesday?\nAnswer: Michael "
    "started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing "
    "2 more, he had 35 - 2 = 33 golf balls. So the answer is 33.\n\n"
    "Question: Olivia has $23. She bought five bagels for $3 each. How much money does she have "
    "left?\nAnswer: Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 "
    "dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. So the answer is 8.\n\n"
    "Question: Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every "
    "morning and bakes muffins for her friends every day with four. She sells the remainder at "
    "the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make "
    "every day at the farmers' market?\nAnswer:"
)


def test_olmes_prompt_of_a_real_gsm8k_item_is_exact():
    question = sources.read_jsonl(GSM8K_FIXTURE)[0]["question"]
    shots = sources.read_jsonl(GSM8K_SHOTS)[:8]
    assert gsm8k.plain_prompt(question, shots) == OLMES_PROMPT


def test_each_chat_spec_has_a_base_variant_on_the_same_data_and_rule():
    assert BASE_VARIANTS["gsm8k:cot::tulu"] == "gsm8k::olmes"
    assert BASE_VARIANTS["ifeval::tulu"] == "ifeval::tulu_plain"
    assert BASE_VARIANTS["simpletom:cot::paper"] == "simpletom:cot::paper_plain"
    assert BASE_VARIANTS["ds_critique::dscb"] == "ds_critique::dscb_plain"
    for requested, base in BASE_VARIANTS.items():
        chat, plain = get_spec(requested), get_spec(base)
        assert (plain.task, plain.dataset, plain.normalizations) == (
            chat.task,
            chat.dataset,
            chat.normalizations,
        )
        assert plain.prompt_format.endswith("_plain_text") and base not in BASE_VARIANTS
    assert "arc_easy:rc::olmes" not in BASE_VARIANTS  # log-likelihood specs are plain already


def test_choice_by_template_and_checkpoint_kind():
    assert basevariants.choose("gsm8k:cot::tulu", "sft", True) is None
    no_template = basevariants.choose("gsm8k:cot::tulu", "sft", False)
    assert no_template == {
        "requested": "gsm8k:cot::tulu",
        "ran": "gsm8k::olmes",
        "reason": "the model's tokenizer has no chat template",
    }
    for kind in ("pretrain", "base_model"):
        chosen = basevariants.choose("ifeval::tulu", kind, True)
        assert chosen["ran"] == "ifeval::tulu_plain" and kind in chosen["reason"]
    assert basevariants.choose("arc_easy:rc::olmes", "pretrain", False) is None


def _config(**extra):
    base = {"seed": 7, "threads": 1, "specs": ["gsm8k:cot::tulu"], "spec_limit": 2}
    return validate_stage_config("evaluate", base | {"max_gen_toks": 8} | extra)


def test_base_model_evaluate_job_runs_and_records_the_base_variant(tiny_model, tmp_path):
    evaldata = tmp_path / "evaldata"
    (evaldata / "data").mkdir(parents=True)
    shutil.copy(GSM8K_FIXTURE, evaldata / "data" / "gsm8k.jsonl")
    out = tmp_path / "eval"
    config = _config()
    inputs = {"evaldata": evaldata, "curate": tmp_path / "curate"}
    jobs = spec_jobs(config, inputs, out, None, checkpoint="pretrain", chat_template=False)
    assert [(j.spec.task_id, j.requested) for j in jobs] == [("gsm8k::olmes", "gsm8k:cot::tulu")]
    (job, result), = run_jobs(jobs, tiny_model)  # fmt: skip
    result["variant"] = add_variant(job)
    stored = results.load_result(job.out_dir)
    assert stored["task_id"] == "gsm8k::olmes"
    assert stored["variant"] == {
        "requested": "gsm8k:cot::tulu",
        "ran": "gsm8k::olmes",
        "reason": "the model's tokenizer has no chat template",
    }
    assert stored["harness"]["generation"]["until"] == ["Question:", "</s>", "<|im_end|>", "\n\n"]
    request = sources.read_jsonl(job.out_dir / "requests.jsonl")[0]
    assert request["context"] == OLMES_PROMPT and request["index"] == 0
    assert results.recompute(job.out_dir)["problems"] == []
    # results.json and the comparison table say which spec ran for which requested one.
    summary = document.summary(job, result, out)
    doc = document.results_json({job.spec.task_id: summary}, checkpoint="pretrain", config=config)
    assert doc["variants"]["gsm8k:cot::tulu"]["ran"] == "gsm8k::olmes"
    (out / "results.json").write_text(json.dumps(doc))
    table = compare.build(collect.evaluate_entries(out, "pretrain"), ["pretrain"])
    assert [row["task"] for row in table["rows"]] == ["gsm8k::olmes"]
    assert table["variants"] == [
        "pretrain, gsm8k::olmes: the base-model variant of gsm8k:cot::tulu "
        "(the model's tokenizer has no chat template)"
    ]
    assert "Run in place of the requested spec" in compare.markdown(table)


def test_chat_spec_without_a_template_is_still_refused(tiny_model, tmp_path):
    """Asked for directly (``reprolm eval run``), a chat spec keeps refusing a base model."""
    spec = get_spec("gsm8k:cot::tulu")
    from evals.families import RunOptions, family_of

    with pytest.raises(ValueError, match="no chat template"):
        family_of(spec).evaluate(
            spec, tiny_model, GSM8K_FIXTURE, tmp_path / "x", RunOptions(limit=1)
        )


def test_world_generative_tasks_stay_plain_for_every_base_kind():
    from stages.evaluate.specs import use_chat

    assert [use_chat("auto", kind) for kind in ("pretrain", "base_model", "sft")] == [
        False,
        False,
        True,
    ]


def test_midtrain_and_soup_checkpoints_are_base_models():
    """The anneal and a soup of base checkpoints are base models: plain prompts, base variants."""
    from evals.basevariants import BASE_KINDS
    from stages.evaluate.specs import use_chat

    assert {"midtrain", "soup"} <= set(BASE_KINDS)
    assert not use_chat("auto", "midtrain") and not use_chat("auto", "soup")
    assert use_chat("auto", "sft")
