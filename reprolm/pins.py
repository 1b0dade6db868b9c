"""Plan-time pins of external directories a job copies: a given tokenizer's digest, so that its
content, not only its path, is part of the tokenize fingerprint (an edited tokenizer directory
reruns tokenize and everything after it; without the pin only a changed path would).

The files are the ones ``stages/tokenize/given.py`` copies (``TOKENIZER_FILES``, repeated here
because the platform imports no job code; a test keeps the lists equal), hashed as the job
hashes its copy, so the pinned digest is the one the job checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reprolm.evalplan import source_path
from reprolm.hashing import hash_file, payload_digest
from reprolm.recipe import RecipeError

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


def pin_tokenizer(tokenize: Mapping[str, Any]) -> dict[str, Any]:
    """The tokenize config with ``tokenizer.digest`` filled from the directory's tokenizer files
    (unchanged when no tokenizer is given or the recipe pins the digest itself: the job then
    checks the recipe's pin)."""
    spec = tokenize.get("tokenizer")
    if not spec or spec.get("digest"):
        return dict(tokenize)
    source = source_path(spec["path"])
    if not (source / "tokenizer.json").is_file():
        raise RecipeError(
            f"tokenize.tokenizer.path={spec['path']}: no tokenizer.json there; point it at a "
            "directory written by save_pretrained of a fast HF tokenizer, or remove "
            "tokenize.tokenizer to train a BPE"
        )
    files = {
        name: {"hash": hash_file(source / name), "size": (source / name).stat().st_size}
        for name in TOKENIZER_FILES
        if (source / name).is_file()
    }
    return {**tokenize, "tokenizer": {**spec, "digest": payload_digest(files)}}
