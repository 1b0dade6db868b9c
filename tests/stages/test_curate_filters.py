"""Quality filters (datatrove blocks, offline tokenizer) and PII masking of the curate stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stages.curate.filters import FILTERS, apply_filters, build_filters, filter_options
from stages.curate.pii import TOKENS, mask_pii

ROOT = Path(__file__).resolve().parents[2]

PROSE = """\
The history of the river valley is long and varied. Early settlers arrived in the spring and \
built their homes near the water.
They planted wheat and barley in the fertile fields that lined the banks of the river.
Over the years, the small village grew into a busy market town with a church, a school and a mill.
Merchants came from distant cities to trade wool, grain and timber for salt and iron tools.
The town suffered during the long winters, but the people worked together to survive them.
Today the valley is known for its orchards, its quiet roads and the old stone bridge that \
still stands.
Visitors walk along the river in the evening and watch the light fade behind the hills."""

NO_STOP_WORDS = " ".join(["lorem", "data", "model", "river"] * 20) + "."
ALL = {name: True for name in FILTERS}


def run(spec, text):
    return apply_filters(build_filters(spec), text)


def test_clean_prose_passes_every_filter_unchanged():
    assert run(ALL, PROSE) == (PROSE, None)


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("gopher_quality", "A short note that says very little.", "gopher_short_doc"),
        ("gopher_quality", PROSE + "\n" + "#tag " * 40, "gopher_too_many_hashes"),
        ("gopher_quality", NO_STOP_WORDS, "gopher_enough_stop_words"),
        ("gopher_repetition", "\n".join(PROSE.splitlines() * 3), "dup_line_frac"),
        ("gopher_repetition", "\n\n".join([PROSE] * 3), "dup_para_frac"),
        ("c4", PROSE + "\nLorem ipsum dolor sit amet, consectetur.", "lorem_ipsum"),
        ("c4", PROSE + "\nThe function is {return x;} in the code.", "curly_bracket"),
        ("c4", PROSE.replace(".", ""), "too_few_sentences"),
        ("fineweb", PROSE.replace(".", ""), "line_punct_ratio"),
        ("fineweb", "\n".join(w + "." for w in PROSE.split()), "short_line_ratio"),
        ("fineweb", PROSE + "\n" + PROSE.splitlines()[1], "char_dup_ratio"),
    ],
)
def test_each_filter_drops_what_breaks_its_rule(name, text, reason):
    assert run({name: True}, text)[1] == f"{name}:{reason}"
    assert run({name: True}, PROSE)[1] is None


def test_first_failing_filter_names_the_drop():
    text = "A short note that says very little."
    assert run(ALL, text)[1] == "gopher_quality:gopher_short_doc"
    reordered = {"fineweb": True, "c4": True, "gopher_quality": True}
    assert run(reordered, text)[1] == "c4:too_few_sentences"


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_a_text_without_words_is_dropped_not_crashed():
    # datatrove divides by the word count once min_doc_words no longer stops it first
    assert run({"gopher_quality": {"min_doc_words": None}}, "  \n ") == (
        "  \n ",
        "gopher_quality:no_words",
    )


def test_c4_removes_lines_and_returns_the_new_text():
    text = PROSE + "\nPlease enable Javascript to view this page.\nno terminal punctuation here"
    kept, why = run({"c4": True}, text)
    assert why is None
    assert kept == PROSE


def test_kwargs_reach_datatrove():
    assert run({"gopher_quality": {"min_doc_words": 500}}, PROSE)[1] == (
        "gopher_quality:gopher_short_doc"
    )
    assert run({"gopher_quality": {"min_doc_words": 3}}, "The cat and the dog sat.")[1] is None
    assert run({"c4": {"min_num_sentences": 20}}, PROSE)[1] == "c4:too_few_sentences"
    # YAML gives lists: stop_chars reaches str.endswith as a tuple
    assert run({"fineweb": {"stop_chars": ["!"]}}, PROSE)[1] == "fineweb:line_punct_ratio"
    top = {"top_n_grams": [[2, 0.001]], "dup_n_grams": []}
    assert run({"gopher_repetition": top}, PROSE)[1] == "gopher_repetition:top_2_gram"
    assert run({"gopher_quality": False, "c4": False}, "x") == ("x", None)


def test_bad_spec_errors_name_the_key():
    with pytest.raises(
        ValueError, match=r"curate\.filters\.gopher: unknown filter.*gopher_quality"
    ):
        build_filters({"gopher": True})
    with pytest.raises(
        ValueError, match=r"src\.filters\.c4\.min_words: unknown option.*min_words_per_line"
    ):
        build_filters({"c4": {"min_words": 2}}, where="src.filters")
    with pytest.raises(ValueError, match=r"curate\.filters\.fineweb\.language"):
        build_filters({"fineweb": {"language": "fr"}})
    with pytest.raises(ValueError, match=r"curate\.filters\.fineweb: expected"):
        build_filters({"fineweb": 3})
    assert "exclusion_writer" not in filter_options("gopher_quality")
    assert "min_doc_words" in filter_options("gopher_quality")


def test_no_nltk_data_or_network(tmp_path):
    """A fresh interpreter with an empty NLTK_DATA, nltk's data loader and sockets disabled."""
    (tmp_path / "nltk").mkdir()
    code = textwrap.dedent(
        f"""
        import json, socket, nltk, nltk.data
        def refuse(*args, **kwargs):
            raise AssertionError(f"tried to fetch/load data: {{args}}")
        nltk.download = nltk.data.load = nltk.data.find = refuse
        socket.socket.connect = refuse
        from stages.curate.filters import FILTERS, apply_filters, build_filters
        spec = {{name: True for name in FILTERS}}
        out = [apply_filters(build_filters(spec), {PROSE!r})[1]]
        sentences = build_filters({{"c4": {{"split_paragraph": False}}}})  # span_tokenize
        out.append(apply_filters(sentences, {PROSE!r})[1])
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "NLTK_DATA": str(tmp_path / "nltk"), "HOME": str(tmp_path)}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [None, None]
    assert not list((tmp_path / "nltk").iterdir())


def test_offline_tokenizer_matches_nltk_word_tokenize_rules():
    from stages.curate.wordtok import english

    tok = english()
    text = "Dr. Smith didn't go. He paid $3.50, (twice)! Really?"
    assert tok.word_tokenize(text) == [
        "Dr.", "Smith", "did", "n't", "go", ".", "He", "paid", "$", "3.50", ",", "(", "twice",
        ")", "!", "Really", "?",
    ]  # fmt: skip
    assert tok.sent_tokenize(text) == ["Dr. Smith didn't go.", "He paid $3.50, (twice)!", "Really?"]
    assert [text[a:b] for a, b in tok.span_tokenize(text)] == tok.sent_tokenize(text)


# -- PII --------------------------------------------------------------------------------------


def test_pii_masked_and_counted():
    text = (
        "Write to jane.doe@example.com or j_smith+news@mail.example.org. "
        "Call (555) 123-4567, 555-987-6543, +1 555 222 3333 or +44 20 7946 0958. "
        "The server at 8.8.8.8 answered."
    )
    masked, counts = mask_pii(text)
    assert counts == {"email_address": 2, "ip_address": 1, "phone_number": 4}
    assert masked == (
        "Write to {e} or {e}. Call {p}, {p}, {p} or {p}. The server at {i} answered.".format(
            e=TOKENS["email_address"], p=TOKENS["phone_number"], i=TOKENS["ip_address"]
        )
    )


def test_pii_leaves_ordinary_numbers_alone():
    text = (
        "In 2024 the price rose from $1,299.99 to $1,499 (up 15.4%). On 2024-01-15 at 10:30 "
        "version 3.11.2 shipped; population 8,336,817; ISBN 978-0-306-40615-7; score 3-2; "
        "order 12345678901; the router at 192.168.0.1 and localhost 127.0.0.1 are private."
    )
    assert mask_pii(text) == (text, dict.fromkeys(TOKENS, 0))
