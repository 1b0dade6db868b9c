"""The lm-eval wrapper (``lm_eval.simple_evaluate``): every model call of a task goes through here.

A task family renders its prompts itself (so the spec, not lm-eval's templates, decides every
byte a model sees) and hands this module pre-rendered requests; this module writes a scratch
lm-eval task over them and runs ``lm_eval.simple_evaluate``. Two request kinds cover every family:

* :func:`loglikelihoods` — ``{doc_id, context, continuations}``: log P(continuation | context)
  and whether it is the greedy continuation, for each continuation (``output_type:
  multiple_choice`` with ``target_delimiter: ""``).
* :func:`generate` — ``{doc_id, context}``: the generated text (``output_type: generate_until``,
  greedy unless ``do_sample``; one lm-eval task per call, so one set of generation kwargs).

Chat formatting is the family's job too (:func:`render_chat`): lm-eval's own chat templating is
never switched on, so a prompt is the same string whichever path built it. Heavy imports stay
inside functions.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reprolm.canonical import canonical_json
from reprolm.hashing import hash_payload, payload_digest

BACKENDS = ("hf", "vllm")


def require_safetensors(model_dir: Path, what: str = "the model") -> None:
    """Refuse a model directory without safetensors weights: pickled weights (``*.bin``,
    ``*.pt``) are never loaded (SECURITY.md)."""
    if not any(Path(model_dir).glob("*.safetensors")):
        raise FileNotFoundError(
            f"{model_dir}: {what} has no *.safetensors weights; pickled weights are never loaded "
            "(SECURITY.md): convert them with save_pretrained(dir, safe_serialization=True)"
        )


def load_model(
    model_dir: Path,
    batch_size: int = 1,
    *,
    backend: str = "hf",
    device: str = "cpu",
    dtype: str = "float32",
) -> Any:
    """An lm-eval model over a local HF-format directory (nothing is downloaded).

    ``hf`` runs on CPU or CUDA; ``vllm`` (GPU only) needs the ``gpu`` extra.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if not (Path(model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}/config.json is missing: the model must be an HF dir")
    require_safetensors(Path(model_dir))
    if backend == "hf":
        from lm_eval.models.huggingface import HFLM

        return HFLM(
            pretrained=str(model_dir), device=device, batch_size=batch_size, dtype=dtype,
            use_safetensors=True,
        )  # fmt: skip
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "backend 'vllm' needs vLLM (GPU only): install the project's `gpu` extra on a "
                "GPU node, or use backend 'hf'"
            ) from None
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(
            pretrained=str(model_dir), batch_size=batch_size, dtype=dtype, seed=1234,
            load_format="safetensors",
        )  # fmt: skip
    raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> str:
    """The prompt string of a conversation under the tokenizer's chat template, ready for the
    assistant's turn; a tokenizer without a template is refused."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the model's tokenizer has no chat template; use a plain-text format")
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)


def stop_at_tokens(lm: Any, tokens: Sequence[str]) -> list[int]:
    """Make generation end at any of ``tokens`` (e.g. ``<|im_end|>``) as at end-of-text.

    lm-eval decodes generations with ``skip_special_tokens=True``, so a special end-of-turn
    token can never match an ``until`` string: a batch row that has finished would keep
    generating past it and the extra text would leak in. Adding it to the model's end tokens
    pads finished rows instead. Returns the end token ids now in effect (HF backend only).
    """
    model = getattr(lm, "model", None)
    config = getattr(model, "generation_config", None)
    if config is None:
        return []
    tok = tokenizer_of(lm)
    current = config.eos_token_id
    ends = set(current if isinstance(current, list) else [current])
    ends.add(tok.eos_token_id)
    for token in tokens:
        token_id = tok.convert_tokens_to_ids(token)
        if token_id is not None and token_id != tok.unk_token_id:
            ends.add(token_id)
    ends.discard(None)
    config.eos_token_id = sorted(ends)
    return config.eos_token_id


def tokenizer_of(lm: Any) -> Any:
    """The HF tokenizer of an lm-eval model."""
    return lm.tokenizer


def loglikelihoods(lm: Any, requests: list[dict], seed: int = 1234) -> dict[int, list[dict]]:
    """``doc_id -> [{context, continuation, loglik, is_greedy}]`` for each continuation."""
    samples = _run(lm, requests, _loglik_yaml, seed)
    out = {}
    for sample in samples:
        out[sample["doc_id"]] = [
            {
                "context": arg[0],
                "continuation": arg[1],
                "loglik": float(resp[0][0]),
                "is_greedy": bool(resp[0][1]),
            }
            for arg, resp in zip(sample["arguments"], sample["resps"], strict=True)
        ]
    return out


def generate(
    lm: Any,
    requests: list[dict],
    *,
    until: Sequence[str],
    max_gen_toks: int,
    seed: int = 1234,
    do_sample: bool = False,
    temperature: float = 0.0,
) -> dict[int, str]:
    """``doc_id -> generated text`` (stopped at the first ``until`` string, which is dropped)."""
    kwargs: dict[str, Any] = {
        "until": list(until),
        "max_gen_toks": max_gen_toks,
        "do_sample": do_sample,
    }
    if do_sample:
        kwargs["temperature"] = temperature
    samples = _run(lm, requests, lambda *where: _gen_yaml(*where, kwargs), seed)
    return {sample["doc_id"]: str(sample["resps"][0][0]) for sample in samples}


def generate_samples(
    lm: Any,
    requests: list[dict],
    *,
    until: Sequence[str],
    max_gen_toks: int,
    temperature: float,
    top_p: float,
    repeats: int,
    seed: int = 1234,
) -> dict[int, list[str]]:
    """``doc_id -> repeats sampled texts`` (lm-eval ``repeats``; nucleus sampling)."""
    kwargs: dict[str, Any] = {
        "until": list(until),
        "max_gen_toks": max_gen_toks,
        "do_sample": True,
        "temperature": temperature,
        "top_p": top_p,
    }

    def yaml_of(*where: str) -> str:
        return _gen_yaml(*where, kwargs).replace("metadata:", f"repeats: {int(repeats)}\nmetadata:")

    samples = _run(lm, requests, yaml_of, seed)
    return {s["doc_id"]: [str(t) for t in s["resps"][0]] for s in samples}


def n_tokens(lm: Any, context: str, continuation: str) -> int:
    """Tokens of ``continuation`` after ``context``, split as lm-eval splits it."""
    return len(lm._encode_pair(context, continuation)[1])


def _run(lm: Any, requests: list[dict], yaml_of, seed: int) -> list[dict]:
    """Write one scratch task over ``requests``, run it, return its samples by ``doc_id``."""
    if not requests:
        return []
    doc_ids = [r["doc_id"] for r in requests]
    if doc_ids != list(range(len(requests))):
        raise ValueError("requests must carry doc_id 0..n-1 in order (lm-eval numbers them so)")
    name = "reprolm_request_batch"
    scratch = Path(tempfile.mkdtemp(prefix="reprolm-engine-"))
    try:
        data = scratch / f"{name}.jsonl"
        data.write_text("".join(canonical_json(r) + "\n" for r in requests), encoding="utf-8")
        text = yaml_of(name, str(data), str(scratch / "datasets-cache"))
        (scratch / f"{name}.yaml").write_text(text, encoding="utf-8")
        out = simple_evaluate(lm, scratch, [name], seed)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return sorted(out["samples"][name], key=lambda s: s["doc_id"])


def simple_evaluate(
    lm: Any,
    task_dir: Path,
    names: list[str],
    seed: int,
    *,
    num_fewshot: int = 0,
    limit: int | None = None,
    chat: bool | None = None,
) -> dict:
    """``lm_eval.simple_evaluate`` over the generated tasks in ``task_dir``: offline, seeded,
    samples logged, no bootstrap. Spec families pre-render shots and chat formatting (the
    defaults: zero-shot, no lm-eval chat templating); the tiny world's tasks let lm-eval draw
    ``num_fewshot`` shots and, with ``chat`` set, say whether lm-eval applies the chat template
    (shots as turns); ``None`` leaves both lm-eval settings at their defaults."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    chat_kwargs = (
        {} if chat is None else {"apply_chat_template": chat, "fewshot_as_multiturn": chat}
    )
    with _env_info_once():
        return lm_eval.simple_evaluate(
            model=lm,
            tasks=names,
            num_fewshot=num_fewshot,
            limit=limit,
            bootstrap_iters=0,
            log_samples=True,
            **chat_kwargs,
            task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )


_ENV_INFO: dict[str, Any] = {}


@contextmanager
def _env_info_once() -> Iterator[None]:
    """lm-eval's results carry environment info (``add_env_info``: torch's ``collect_env``,
    ~30 subprocesses, ~0.5 s a call, more than a tiny model's whole generation); within one
    process it is gathered once and copied into each result. Only its metadata keys change
    (``pretty_env_info``, versions, ``upper_git_hash``), which the project never reads."""
    import lm_eval.evaluator as evaluator

    original = evaluator.add_env_info

    def cached(storage: dict[str, Any]) -> None:
        if not _ENV_INFO:
            original(_ENV_INFO)
        storage.update(copy.deepcopy(_ENV_INFO))

    evaluator.add_env_info = cached
    try:
        yield
    finally:
        evaluator.add_env_info = original


def _head(name: str, data: str, cache: str) -> list[str]:
    return [
        "# Generated by evals.lmeval: prompts are pre-rendered in the data file.",
        f"task: {name}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {json.dumps(data)}",
        f"  cache_dir: {json.dumps(cache)}",
        "test_split: test",
        "doc_to_text: context",
    ]


def _loglik_yaml(name: str, data: str, cache: str) -> str:
    lines = [
        *_head(name, data, cache),
        "output_type: multiple_choice",
        "doc_to_choice: continuations",
        "doc_to_target: 0",
        'target_delimiter: ""',
        "metric_list:",
        "  - metric: acc",
        "metadata:",
        "  version: 1.0",
        "",
    ]
    return "\n".join(lines)


def _gen_yaml(name: str, data: str, cache: str, kwargs: dict[str, Any]) -> str:
    lines = [
        *_head(name, data, cache),
        "output_type: generate_until",
        'doc_to_target: ""',
        'target_delimiter: ""',
        f"generation_kwargs: {json.dumps(kwargs)}",
        "metric_list:",
        "  - metric: exact_match",
        "metadata:",
        "  version: 1.0",
        "",
    ]
    return "\n".join(lines)


def model_digest(model_dir: Path) -> str:
    """blake3 payload digest of the model directory (every file, paths relative)."""
    return payload_digest(hash_payload(Path(model_dir)))


def model_block(model_dir: Path) -> dict[str, str]:
    """The result's ``model`` block: the model directory's digest and name."""
    return {"digest": model_digest(model_dir), "name": Path(model_dir).name}


def versions() -> dict[str, str]:
    """Versions of the packages that decide a number (lm-eval, torch, transformers)."""
    import lm_eval
    import torch
    import transformers

    return {
        "lm_eval": lm_eval.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
