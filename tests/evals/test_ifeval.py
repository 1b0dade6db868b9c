"""IFEval: every checker on hand-written responses, strict vs loose, the four numbers, the CLI
score + recompute round trip, the spec, and agreement with the RLVR verifier."""

from __future__ import annotations

import json

import pytest

from evals import ifeval, sources, verifiers
from evals.registry import get_spec
from evals.spec import resolve, spec_hash
from reprolm.cli import main
from tests.evals.cli import run_cli
from tests.evals.conftest import IFEVAL_DATA

ITEMS = sources.read_jsonl(IFEVAL_DATA)
ENGLISH = "this is an english sentence about the weather today and everyday life."
LANGUAGE_SAMPLES = {
    "fa": "این یک متن کوتاه به زبان فارسی است که درباره هوای امروز و زندگی روزمره صحبت می‌کند.",
    "hi": "यह हिंदी भाषा में लिखा गया एक छोटा सा पाठ है जो आज के मौसम के बारे में है।",
    "kn": "ಇದು ಕನ್ನಡ ಭಾಷೆಯಲ್ಲಿ ಬರೆದ ಒಂದು ಚಿಕ್ಕ ಪಠ್ಯ, ಇಂದಿನ ಹವಾಮಾನದ ಬಗ್ಗೆ ಮಾತನಾಡುತ್ತದೆ.",
    "ko": "이것은 오늘의 날씨와 일상 생활에 대해 이야기하는 짧은 한국어 글입니다.",
    "mr": "हा मराठी भाषेत लिहिलेला एक छोटा मजकूर आहे, जो आजच्या हवामानाबद्दल बोलतो आहे.",
    "pa": "ਇਹ ਪੰਜਾਬੀ ਭਾਸ਼ਾ ਵਿੱਚ ਲਿਖਿਆ ਇੱਕ ਛੋਟਾ ਜਿਹਾ ਲੇਖ ਹੈ ਜੋ ਅੱਜ ਦੇ ਮੌਸਮ ਬਾਰੇ ਗੱਲ ਕਰਦਾ ਹੈ।",
    "ru": "Это короткий текст на русском языке о сегодняшней погоде и повседневной жизни.",
    "sw": "Haya ni maandishi mafupi kwa lugha ya Kiswahili kuhusu hali ya hewa ya leo na maisha.",
    "vi": "Đây là một đoạn văn ngắn bằng tiếng Việt nói về thời tiết hôm nay và cuộc sống.",
}


def _counted(unit: str, bound: int, relation: str, sep: str = " ") -> tuple[str, str]:
    """(compliant, non-compliant) texts with ``unit`` repeated around ``bound``."""
    good, bad = (bound, bound - 1) if relation == "at least" else (bound - 1, bound)
    return sep.join([unit] * good), sep.join([unit] * bad)


def responses(iid: str, k: dict) -> tuple[str, str]:
    """A compliant and a non-compliant response for one instruction with its kwargs."""
    if iid == "keywords:existence":
        return "Here: " + " ".join(k["keywords"]) + ".", "123."
    if iid == "keywords:frequency":
        good, bad = _counted(k["keyword"], k["frequency"], k["relation"])
        return f"Text: {good}.", f"Text: {bad}."
    if iid == "keywords:forbidden_words":
        return "Zzyzx.", f"It is {k['forbidden_words'][0]}."
    if iid == "keywords:letter_frequency":
        good, bad = _counted(k["letter"], k["let_frequency"], k["let_relation"], sep="")
        return f"1 {good}", f"1 {bad}"
    if iid == "language:response_language":
        return LANGUAGE_SAMPLES[k["language"]], "This is plainly written in English, not otherwise."
    if iid == "change_case:english_capital":
        return ENGLISH.upper(), ENGLISH
    if iid == "change_case:english_lowercase":
        return ENGLISH, ENGLISH.capitalize()
    if iid == "change_case:capital_word_frequency":
        good, bad = _counted("WORD", k["capital_frequency"], k["capital_relation"])
        return f"ok {good}", f"ok {bad}"
    if iid == "length_constraints:number_sentences":
        return _counted("This is a sentence.", k["num_sentences"], k["relation"])
    if iid == "length_constraints:number_words":
        return _counted("word", k["num_words"], k["relation"])
    if iid == "length_constraints:number_paragraphs":
        n = k["num_paragraphs"]
        return "\n***\n".join(["Some text."] * n), "\n***\n".join(["Some text."] * (n + 1))
    if iid == "length_constraints:nth_paragraph_first_word":
        paragraphs = ["Other words here."] * k["num_paragraphs"]
        wrong = list(paragraphs)
        paragraphs[k["nth_paragraph"] - 1] = f'"{k["first_word"].capitalize()}, then more.'
        wrong[k["nth_paragraph"] - 1] = "Different start."
        return "\n\n".join(paragraphs), "\n\n".join(wrong)
    if iid == "detectable_content:number_placeholders":
        n = k["num_placeholders"]
        return " ".join(f"[p{i}]" for i in range(n)), "x " + " ".join(
            f"[p{i}]" for i in range(n - 1)
        )
    if iid == "detectable_content:postscript":
        return f"Body.\n\n{k['postscript_marker']} one more thing.", "Body only, no note."
    if iid == "detectable_format:number_bullet_lists":
        n = k["num_bullets"]
        return "\n".join(["* item"] * n), "\n".join(["- item"] * (n + 1))
    if iid == "detectable_format:constrained_response":
        return "My answer is maybe.", "Maybe."
    if iid == "detectable_format:number_highlighted_sections":
        n = k["num_highlights"]
        return " ".join(["*part*"] * n), "x " + " ".join(["*part*"] * (n - 1))
    if iid == "detectable_format:multiple_sections":
        s, n = k["section_spliter"], k["num_sections"]
        sections = [f"{s} {i}\ntext" for i in range(1, n + 1)]
        return "\n\n".join(sections), "intro\n\n" + "\n\n".join(sections[:-1])
    if iid == "detectable_format:json_format":
        return '```json\n{"a": [1, 2]}\n```', "{a: 1}"
    if iid == "detectable_format:title":
        return "<<My Title>>\nbody", "My Title\nbody"
    if iid == "combination:two_responses":
        return "First answer.\n******\nSecond answer.", "Same.\n******\nSame."
    if iid == "combination:repeat_prompt":
        return k["prompt_to_repeat"] + "\nMy answer.", "My answer. " + k["prompt_to_repeat"]
    if iid == "startend:end_checker":
        return f"Body. {k['end_phrase']}", f"{k['end_phrase']} Body."
    if iid == "startend:quotation":
        return '"quoted text"', "quoted text"
    if iid == "punctuation:no_comma":
        return "No commas here.", "Yes, commas."
    raise AssertionError(f"no hand-written responses for {iid}")


CASES = sorted(
    {
        (iid, json.dumps({a: b for a, b in k.items() if b is not None}, sort_keys=True))
        for item in ITEMS
        for iid, k in zip(item["instruction_id_list"], item["kwargs"], strict=True)
    }
)


def test_every_instruction_id_of_the_fixture_is_registered():
    ids = {iid for iid, _ in CASES}
    assert len(ids) == 25 and ids <= set(ifeval.CHECKERS)


@pytest.mark.parametrize(("iid", "kwargs"), CASES)
def test_compliant_passes_and_non_compliant_fails(iid, kwargs):
    kwargs = json.loads(kwargs)
    good, bad = responses(iid, kwargs)
    checker = ifeval.build(iid, kwargs)
    assert checker.check(good), (iid, kwargs, good)
    assert not checker.check(bad), (iid, kwargs, bad)
    assert ifeval.follows(iid, kwargs, good, loose=False)


def test_letter_frequency_counts_a_non_letter_itself():
    check = ifeval.build(
        "keywords:letter_frequency", {"letter": "#", "let_frequency": 2, "let_relation": "at least"}
    )
    assert check.check("# one # two") and not check.check("# only one")


def test_unknown_id_and_bad_kwargs_are_refused():
    with pytest.raises(ValueError, match="unknown IFEval instruction id"):
        ifeval.build("keywords:nope", {})
    with pytest.raises(ValueError, match="bad kwargs"):
        ifeval.build("keywords:existence", {"words": ["a"]})
    with pytest.raises(ValueError, match="relation"):
        ifeval.build("length_constraints:number_words", {"num_words": 3, "relation": "about"})


def test_loose_rescues_markup_and_intro_lines_but_strict_does_not():
    cases = [
        ("detectable_format:json_format", {}, '**{"a": 1}**'),
        ("startend:quotation", {}, 'Sure, here it is:\n"quoted"'),
        ("startend:end_checker", {"end_phrase": "Bye."}, "Text. Bye.\nAnything else?"),
        ("punctuation:no_comma", {}, "Hello, there\nbody"),
    ]
    for iid, kwargs, response in cases:
        assert not ifeval.follows(iid, kwargs, response, loose=False)
        assert ifeval.follows(iid, kwargs, response, loose=True)
    # A comma in a middle line survives every variant: loose fails too.
    assert not ifeval.follows("punctuation:no_comma", {}, "a\nb, c\nd", loose=True)
    assert len(ifeval.loose_variants("x\n*y*\nz")) == 8
    assert not ifeval.follows("punctuation:no_comma", {}, "   ", loose=True)  # empty never passes


def _item(prompt: str, *ids: str) -> dict:
    return {"prompt": prompt, "instruction_id_list": list(ids), "kwargs": [{} for _ in ids]}


HAND_MADE = [
    (_item("A", "punctuation:no_comma", "startend:quotation"), '"Hello there"'),
    (_item("B", "startend:quotation", "punctuation:no_comma"), 'Intro, here:\n"quoted"'),
    (_item("C", "punctuation:no_comma", "detectable_format:title"), "a, b"),
    (_item("D", "punctuation:no_comma"), "fine"),
]


def test_four_numbers_on_hand_made_predictions():
    records = ifeval.score_rows(
        [{"prompt": item["prompt"], "response": r} for item, r in HAND_MADE],
        {item["prompt"]: item for item, _ in HAND_MADE},
    )
    # strict: A 2/2, B 0/2, C 0/2, D 1/1; loose: B's intro line is dropped -> 2/2.
    assert ifeval.metrics(records) == {
        "prompt_level_strict_acc": 2 / 4,
        "inst_level_strict_acc": 3 / 7,
        "prompt_level_loose_acc": 3 / 4,
        "inst_level_loose_acc": 5 / 7,
    }


def test_spec_resolves_against_the_fixture():
    spec = get_spec("ifeval::tulu")
    assert spec.task == "ifeval" and spec.format == "" and spec.fewshot is None
    assert spec.primary_metric == "prompt_level_loose_acc"
    resolved = resolve(spec, IFEVAL_DATA, len(ITEMS))
    assert resolved["dataset_rows"] == 300 and resolved["instances"] == "all"
    assert resolved["fewshot_digest"] is None and len(resolved["dataset_digest"]) == 64
    assert len(spec_hash(resolved)) == 64


def _fixture_responses() -> list[str]:
    """Per item: the compliant response of its first instruction (others may or may not hold)."""
    out = []
    for item in ITEMS:
        kwargs = {a: b for a, b in item["kwargs"][0].items() if b is not None}
        out.append(responses(item["instruction_id_list"][0], kwargs)[0])
    return out


def test_score_and_recompute_from_files(tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    rows = [
        {"prompt": i["prompt"], "response": r}
        for i, r in zip(ITEMS, _fixture_responses(), strict=True)
    ]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "result"
    argv = ["eval", "score", "ifeval::tulu", "--predictions", str(preds)]
    code, text = run_cli([*argv, "--data", str(IFEVAL_DATA), "--out", str(out), "--json"], capsys)
    result = json.loads(text)
    assert code == 0 and result["instances"] == 300 and result["kind"] == "ifeval"
    assert set(result["metrics"]) == set(ifeval.METRICS)
    assert result["primary"] == result["metrics"]["prompt_level_loose_acc"]
    # Every item's first instruction is followed, so instruction-level > prompt-level > 0.
    m = result["metrics"]
    assert 0 < m["prompt_level_strict_acc"] < m["inst_level_strict_acc"] <= 1
    assert m["prompt_level_strict_acc"] <= m["prompt_level_loose_acc"]

    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text

    # Tampering with a response is caught (digest and metrics), even if the stored flags are kept.
    lines = (out / "predictions.jsonl").read_text().splitlines()
    first = next(
        n for n, line in enumerate(lines) if '"follow_all_instructions_strict":true' in line
    )
    record = json.loads(lines[first])
    record["response"] = ""
    lines[first] = json.dumps(record)
    (out / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 1 and "metric prompt_level_strict_acc" in text and "blake3 differs" in text

    # A prompt that is not in --data is refused with its line number.
    preds.write_text(json.dumps({"prompt": "unknown", "response": "x"}) + "\n")
    with pytest.raises(SystemExit) as done:
        main([*argv, "--data", str(IFEVAL_DATA)])
    assert done.value.code == 2 and "line 1" in capsys.readouterr().err


def test_rlvr_verifier_gives_the_scorers_strict_instruction_fraction():
    verify = verifiers.get_verifier("ifeval")
    records = ifeval.score_rows(
        [
            {"prompt": i["prompt"], "response": r}
            for i, r in zip(ITEMS, _fixture_responses(), strict=True)
        ],
        {i["prompt"]: i for i in ITEMS},
    )
    for item, record in zip(ITEMS[:60], records, strict=False):
        truth = json.dumps(
            {"instruction_id_list": item["instruction_id_list"], "kwargs": item["kwargs"]}
        )
        flags = record["follow_instruction_list_strict"]
        assert verify(record["response"], truth) == sum(flags) / len(flags)
    with pytest.raises(ValueError, match="instruction_id_list"):
        verify("x", "{}")
