"""The lm-eval engine primitives against the model's own logits and generate()."""

from __future__ import annotations

import pytest

from evals import lmeval


@pytest.fixture(scope="module")
def lm(tiny_model):
    return lmeval.load_model(tiny_model, batch_size=2)


def _direct_loglik(lm, context: str, continuation: str) -> float:
    import torch

    ctx, cont = lm._encode_pair(context, continuation)
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm.model(ids).logits[0].double(), dim=-1)
    return float(sum(logprobs[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def test_loglikelihoods_equal_the_models_logits(lm):
    requests = [
        {
            "doc_id": 0,
            "context": "Question: Which is hot?\nAnswer:",
            "continuations": [" fire", " ice"],
        },
        {"doc_id": 1, "context": "The sun", "continuations": [" rises", " is a star"]},
    ]
    out = lmeval.loglikelihoods(lm, requests)
    assert sorted(out) == [0, 1]
    for request in requests:
        scored = out[request["doc_id"]]
        assert [s["continuation"] for s in scored] == request["continuations"]
        for s in scored:
            direct = _direct_loglik(lm, request["context"], s["continuation"])
            assert s["loglik"] == pytest.approx(direct, abs=1e-4)


def test_generate_equals_greedy_hf_generate(lm):
    import torch

    contexts = ["Question: Which is hot?\nAnswer:", "The sun rises in the"]
    requests = [{"doc_id": i, "context": c} for i, c in enumerate(contexts)]
    out = lmeval.generate(lm, requests, until=["\n\n"], max_gen_toks=8)
    again = lmeval.generate(lm, requests, until=["\n\n"], max_gen_toks=8)
    assert out == again
    tok = lm.tokenizer
    for i, context in enumerate(contexts):
        ids = torch.tensor([tok(context)["input_ids"]])
        with torch.no_grad():
            gen = lm.model.generate(
                ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id
            )
        text = tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True)
        assert out[i] == text.split("\n\n")[0]


def test_requests_must_be_numbered_in_order(lm):
    with pytest.raises(ValueError, match=r"doc_id 0\.\.n-1"):
        lmeval.generate(lm, [{"doc_id": 3, "context": "x"}], until=["\n"], max_gen_toks=2)


def test_render_chat_refuses_a_tokenizer_without_template(lm):
    with pytest.raises(ValueError, match="no chat template"):
        lmeval.render_chat(lm.tokenizer, [{"role": "user", "content": "hi"}])


def test_vllm_backend_without_vllm_is_a_clear_error(tiny_model):
    # vLLM is GPU-only: no CPU wheel exists, so it is never installed in CI.
    with pytest.raises(RuntimeError, match="gpu` extra"):
        lmeval.load_model(tiny_model, backend="vllm")


def test_env_info_is_gathered_once_and_the_original_restored(monkeypatch):
    import lm_eval.evaluator as evaluator

    calls = []

    def fake(storage):
        calls.append(1)
        storage.update({"pretty_env_info": f"env {len(calls)}", "nested": {"a": 1}})

    monkeypatch.setattr(evaluator, "add_env_info", fake)
    monkeypatch.setattr(lmeval, "_ENV_INFO", {})
    first, second = {"results": 1}, {}
    with lmeval._env_info_once():
        evaluator.add_env_info(first)
        first["nested"]["a"] = 2  # a result's copy, not the cache
        evaluator.add_env_info(second)
    assert len(calls) == 1
    assert first["results"] == 1 and first["pretty_env_info"] == "env 1"
    assert second == {"pretty_env_info": "env 1", "nested": {"a": 1}}
    assert evaluator.add_env_info is fake  # restored after the call
