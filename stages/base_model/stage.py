"""Copy an external HF-format model directory into ``model/`` so it is hashed and has lineage.

Recipes that post-train a released base model (Tulu 3 from Llama 3.1 8B) start here instead of
pretraining. The copy makes the model content-addressed like every other artifact: its digest is
in the manifest, downstream manifests name it, and ``digest`` in the recipe pins it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reprolm.hashing import hash_payload, payload_digest
from stages.common.job import Input, JobContext

# Pickle-based weights are never copied (no pickle in artifacts); hidden files are caches/VCS.
IGNORED = ("*.bin", "*.pt", "*.pth", "*.pkl", ".*")
# The training stages load fast tokenizers only (stages.common.training.load_tokenizer).
FAST_TOKENIZER = "tokenizer.json"
SENTENCEPIECE_MODEL = "tokenizer.model"


class BaseModelError(ValueError):
    """The recipe's base model directory cannot be used (the message says why)."""


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Copy ``config['path']`` to ``output_dir/model``; check ``config['digest']`` when given."""
    del inputs  # a source artifact has none
    source = Path(config["path"]).expanduser()
    if not (source / "config.json").is_file():
        raise BaseModelError(
            f"base_model.path={source}: no config.json there; point it at a HF-format model "
            "directory (config.json, *.safetensors, tokenizer files)"
        )
    weights = sorted(p.name for p in source.glob("*.safetensors"))
    if not weights and any(source.glob("*.bin")):
        raise BaseModelError(
            f"base_model.path={source}: only pickle weights (*.bin); convert them to safetensors "
            "(model.save_pretrained(..., safe_serialization=True))"
        )
    check_tokenizer(source)
    shutil.copytree(source, output_dir / "model", ignore=shutil.ignore_patterns(*IGNORED))
    files = hash_payload(output_dir)
    digest = payload_digest(files)
    expected = config.get("digest")
    if expected and expected != digest:
        raise BaseModelError(
            f"base_model.digest={expected} but {source} hashes to {digest}: the directory changed "
            "since the recipe pinned it; restore it or update base_model.digest"
        )
    return {"files": len(files), "bytes": sum(int(f["size"]) for f in files.values())}


def check_tokenizer(source: Path) -> None:
    """Refuse a directory without a fast tokenizer (``tokenizer.json``): every stage after this
    one loads it. A SentencePiece ``tokenizer.model`` alone (many Llama 2 releases) is not
    converted here: the conversion needs the ``sentencepiece`` package (not a reprolm
    dependency) and its bytes follow the transformers version, so it is done once, by the user,
    and the converted directory is what the digest pins."""
    if (source / FAST_TOKENIZER).is_file():
        return
    if (source / SENTENCEPIECE_MODEL).is_file():
        raise BaseModelError(
            f"base_model.path={source}: a SentencePiece {SENTENCEPIECE_MODEL} but no "
            f"{FAST_TOKENIZER}; the training stages need the fast tokenizer file. Convert it "
            'once on a machine with `pip install sentencepiece protobuf`: python -c "from '
            "transformers import LlamaTokenizerFast as T; "
            f'T.from_pretrained({str(source)!r}).save_pretrained({str(source)!r})" (it writes '
            f"{FAST_TOKENIZER} beside {SENTENCEPIECE_MODEL}), then run the job again and pin "
            "the new base_model.digest"
        )
    raise BaseModelError(
        f"base_model.path={source}: no {FAST_TOKENIZER}; the training stages need the model's "
        f"fast tokenizer file there (tokenizer.save_pretrained(...) writes it)"
    )
