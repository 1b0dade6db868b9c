"""An existing HF tokenizer (``tokenize.tokenizer``): copied into the artifact, pinned, checked.

The recipe names a directory saved by ``save_pretrained`` of a fast tokenizer. Its tokenizer
files are copied into ``tokenizer/`` (so downstream stages load it from the artifact as they load
the trained BPE, and its bytes are hashed in the manifest); model weights and pickles are not.
``digest`` pins the copy as ``base_model.digest`` pins a model: the payload digest of the copied
files (``reprolm.hashing.payload_digest`` with paths relative to ``tokenizer/``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from reprolm.hashing import hash_payload, payload_digest

# What save_pretrained writes for a tokenizer (and a sentencepiece model, which is protobuf).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
)
GENERATION_BLOCK = "{% generation %}"


class TokenizerError(ValueError):
    """The recipe's tokenizer cannot be used (the message says why and names the key)."""


def copy_tokenizer(spec: dict, target: Path) -> str:
    """Copy ``spec['path']``'s tokenizer files to ``target``; check ``spec['digest']``; return
    the copy's digest."""
    source = Path(spec["path"]).expanduser()
    if not (source / "tokenizer.json").is_file():
        raise TokenizerError(
            f"tokenize.tokenizer.path={source}: no tokenizer.json there; point it at a directory "
            "written by save_pretrained of a fast HF tokenizer (tokenizer.json, "
            "tokenizer_config.json, special_tokens_map.json), or remove tokenize.tokenizer to "
            "train a BPE"
        )
    target.mkdir(parents=True)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)  # follows HF cache symlinks
    digest = payload_digest(hash_payload(target))
    expected = spec.get("digest")
    if expected and expected != digest:
        raise TokenizerError(
            f"tokenize.tokenizer.digest={expected} but {source} hashes to {digest}: the tokenizer "
            "changed since the recipe pinned it; restore it or update tokenize.tokenizer.digest"
        )
    print(f"tokenize: tokenizer {source} copied, digest {digest}")
    return digest


def load_given(path: Path) -> Any:
    """The copied tokenizer, loaded offline; it must be fast and have an eos token."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as error:  # any loading failure is the directory's fault
        raise TokenizerError(
            f"tokenize.tokenizer.path: the tokenizer does not load ({type(error).__name__}: "
            f"{error}); check the directory's tokenizer_config.json and tokenizer.json"
        ) from error
    if not getattr(tokenizer, "is_fast", False):
        raise TokenizerError(
            "tokenize.tokenizer.path: not a fast tokenizer; save it with a fast "
            "(tokenizers-backed) class so that tokenizer.json is its definition"
        )
    if tokenizer.eos_token is None or tokenizer.eos_token_id is None:
        raise TokenizerError(
            "tokenize.tokenizer.path: the tokenizer has no eos token (documents are separated "
            "by it); set eos_token in its tokenizer_config.json"
        )
    return tokenizer


def has_generation_block(tokenizer: Any) -> bool:
    """Whether the chat template marks assistant tokens (``{% generation %}``, any spacing)."""
    template = tokenizer.chat_template or ""
    if isinstance(template, dict):
        template = "".join(template.values())
    squeezed = template.replace(" ", "").replace("-", "")
    return GENERATION_BLOCK.replace(" ", "") in squeezed
