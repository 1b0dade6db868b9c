"""The tiny random OLMo 2 of tests/evals with the project's ChatML chat template (as the tiny
recipe's models have), and one lm-eval model over it for the research task tests."""

from __future__ import annotations

import pathlib
import shutil

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
EVAL_DATA = pathlib.Path(__file__).resolve().parents[3] / "data" / "eval"


@pytest.fixture(scope="session")
def chat_model(tiny_model, tmp_path_factory) -> pathlib.Path:
    from transformers import AutoTokenizer

    from stages.tokenize.bpe import CHAT_TEMPLATE

    dest = tmp_path_factory.mktemp("research") / "chat-model"
    shutil.copytree(tiny_model, dest)
    tok = AutoTokenizer.from_pretrained(dest)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(dest)
    return dest


@pytest.fixture(scope="session")
def chat_lm(chat_model):
    from evals import lmeval

    return lmeval.load_model(chat_model, batch_size=4)
