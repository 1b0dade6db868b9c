"""Model soup: the weighted mean of several checkpoints' weights (OLMo 2 souped its anneals).

Every tensor is summed in float64 in the listed order, ``sum_i w_i x t_i``, divided by
``sum_i w_i`` and cast back to its stored dtype, so the payload is the same bytes on every run.
The checkpoints must share their architecture (config), tensor names, shapes and dtypes and
their tokenizer; the first one's shard layout, config, generation config and tokenizer files
are the soup's.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from evals.steps import parse, weights_root
from reprolm.canonical import dump_json
from stages.common.job import Input, JobContext
from stages.common.training import TrainingInputError, load_tokenizer, model_dir

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
# config.json keys that do not change what the weights mean.
IGNORED_CONFIG = {"transformers_version", "_name_or_path", "use_cache"}


def checkpoint_dirs(config: dict, inputs: dict[str, Input]) -> list[Path]:
    """The ``model/`` directory of each listed checkpoint (a step's under its stage's job)."""
    dirs = []
    for name in config["checkpoints"]:
        stage = parse(name)[0]
        key = f"model_{stage}"
        if key not in inputs:
            raise TrainingInputError(f"soup: checkpoint {name!r} needs input {key!r}")
        dirs.append(model_dir(weights_root(inputs[key].path, name), key))
    return dirs


def weight_map(directory: Path) -> dict[str, str]:
    """Tensor name -> the safetensors file holding it."""
    if (directory / INDEX).is_file():
        return dict(json.loads((directory / INDEX).read_text("utf-8"))["weight_map"])
    if not (directory / SINGLE).is_file():
        raise TrainingInputError(f"soup: {directory} holds no {SINGLE} nor {INDEX}")
    from safetensors import safe_open

    with safe_open(str(directory / SINGLE), framework="pt") as handle:
        return dict.fromkeys(handle.keys(), SINGLE)


def _architecture(directory: Path) -> dict[str, Any]:
    config = json.loads((directory / "config.json").read_text("utf-8"))
    return {key: value for key, value in config.items() if key not in IGNORED_CONFIG}


def check_compatible(names: list[str], dirs: list[Path]) -> list[dict[str, str]]:
    """The weight maps, once every checkpoint has the first one's architecture, tensors and
    tokenizer (the error names the two checkpoints and what differs)."""
    first, maps = dirs[0], [weight_map(d) for d in dirs]
    vocab = load_tokenizer(first).get_vocab()
    reference = _architecture(first)
    for name, directory, tensors in zip(names[1:], dirs[1:], maps[1:], strict=True):
        where = f"soup.checkpoints: {name} and {names[0]}"
        config = _architecture(directory)
        differs = sorted(
            k for k in set(config) | set(reference) if config.get(k) != reference.get(k)
        )
        if differs:
            raise TrainingInputError(f"{where} differ in architecture (config.json {differs})")
        if sorted(tensors) != sorted(maps[0]):
            missing = sorted(set(maps[0]) ^ set(tensors))[:3]
            raise TrainingInputError(f"{where} hold different tensors (e.g. {missing})")
        if load_tokenizer(directory).get_vocab() != vocab:
            raise TrainingInputError(f"{where} have different tokenizers")
    with ExitStack() as stack:
        handles = _handles(stack, dirs, maps)
        for tensor in maps[0]:
            shapes = set()
            for directory, tensors in zip(dirs, maps, strict=True):
                piece = handles[directory, tensors[tensor]].get_slice(tensor)
                shapes.add((tuple(piece.get_shape()), piece.get_dtype()))
            if len(shapes) > 1:
                raise TrainingInputError(
                    f"soup.checkpoints: tensor {tensor} differs in shape or dtype: {sorted(shapes)}"
                )
    return maps


def _handles(stack: ExitStack, dirs: list[Path], maps: list[dict[str, str]]) -> dict:
    """(directory, file) -> an open safetensors handle, for every file of every checkpoint."""
    from safetensors import safe_open

    return {
        (directory, file): stack.enter_context(safe_open(str(directory / file), framework="pt"))
        for directory, tensors in zip(dirs, maps, strict=True)
        for file in sorted(set(tensors.values()))
    }


def average_file(
    file: str, dirs: list[Path], maps: list[dict[str, str]], weights: list[float]
) -> dict[str, Any]:
    """The averaged tensors of the first checkpoint's ``file``, in its order."""
    import torch

    names = [tensor for tensor, where in maps[0].items() if where == file]
    out = {}
    with ExitStack() as stack:
        handles = _handles(stack, dirs, maps)
        for tensor in sorted(names):
            total = None
            for directory, tensors, weight in zip(dirs, maps, weights, strict=True):
                value = handles[directory, tensors[tensor]].get_tensor(tensor)
                term = value.to(torch.float64) * weight
                total = term if total is None else total + term
            out[tensor] = (total / sum(weights)).to(value.dtype).contiguous()
    return out


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Write model/ (the averaged checkpoint) and soup.json; return what was averaged."""
    from safetensors.torch import save_file

    names = list(config["checkpoints"])
    if len(names) < 2 or len(set(names)) != len(names):
        raise TrainingInputError(f"soup.checkpoints: {names}: list at least two, each once")
    weights = [float(w) for w in config.get("weights") or [1.0] * len(names)]
    if len(weights) != len(names) or min(weights) < 0 or sum(weights) <= 0:
        raise TrainingInputError(
            f"soup.weights: {weights}: one weight >= 0 per checkpoint ({len(names)}), summing "
            "above 0"
        )
    dirs = checkpoint_dirs(config, inputs)
    maps = check_compatible(names, dirs)
    target = output_dir / "model"
    target.mkdir(parents=True)
    for path in sorted(dirs[0].iterdir()):  # config, generation config, tokenizer, index
        if path.is_file() and path.suffix != ".safetensors":
            shutil.copyfile(path, target / path.name)
    for file in sorted(set(maps[0].values())):
        save_file(average_file(file, dirs, maps, weights), str(target / file), {"format": "pt"})
    total = sum(weights)
    record = {
        "checkpoints": names,
        "weights": [weight / total for weight in weights],
        "tensors": len(maps[0]),
    }
    (output_dir / "soup.json").write_text(dump_json(record), "utf-8")
    return {"checkpoints": len(names), "tensors": len(maps[0])}
