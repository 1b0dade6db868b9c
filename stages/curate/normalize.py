"""Text normalization and exact deduplication of training rows."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

# Train set name -> the keys of a row that hold conversations (lists of messages).
MESSAGE_KEYS: dict[str, tuple[str, ...]] = {
    "pretrain": (),
    "midtrain": ("messages",),
    "sft": ("messages",),
    "preference": ("prompt", "chosen", "rejected"),
    "rlvr": ("prompt",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "pretrain": ("id", "text"),
    "midtrain": ("id", "messages"),
    "sft": ("id", "messages"),
    "preference": ("id", "prompt", "chosen", "rejected"),
    "rlvr": ("id", "prompt", "verifier", "ground_truth"),
}

LABEL_KEYS = ("id", "kind", "source")  # a row's labels, not its content

_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newline
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str, form: str = "NFKC") -> str:
    """Unicode ``form`` normalization, then whitespace: CRLF to LF, runs of spaces/tabs to
    one space, lines stripped, at most one blank line in a row, ends stripped. Newlines are
    kept because the QA format ("Question: ...\\nAnswer: ...") depends on them."""
    text = unicodedata.normalize(form, text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def text_fields(train_set: str, row: dict) -> list[str]:
    """The texts of a row: pretrain ``text``, otherwise every message content."""
    if train_set == "pretrain":
        return [row["text"]]
    return [m["content"] for key in MESSAGE_KEYS[train_set] for m in row[key]]


def normalize_row(train_set: str, row: dict, form: str) -> dict | None:
    """The row with its texts normalized, or None when any text becomes empty."""
    row = dict(row)
    if train_set == "pretrain":
        row["text"] = normalize_text(row["text"], form)
    for key in MESSAGE_KEYS[train_set]:
        row[key] = [dict(m, content=normalize_text(m["content"], form)) for m in row[key]]
    return row if all(text_fields(train_set, row)) else None


def content_hash(row: dict) -> str:
    """Hash of everything but ``id``, ``kind`` and ``source``: two rows with the same content
    are the same example whatever their labels or corpus."""
    body = {k: v for k, v in row.items() if k not in LABEL_KEYS}
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def dedup(rows: list[dict]) -> list[dict]:
    """Exact deduplication by content hash, keeping the first occurrence."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        digest = content_hash(row)
        if digest not in seen:  # membership only: set order never reaches the output
            seen.add(digest)
            kept.append(row)
    return kept
