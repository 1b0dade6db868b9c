"""The secret patterns, in one place: what MLflow events and saved diffs are scrubbed of.

* values of environment variables whose names look secret (``SECRET_NAME``);
* the password of a URL (``scheme://user:password@host``);
* in configuration text (not code): the value of a key that names a secret (``SECRET_KEY``:
  ``password = …``, ``secret_access_key: …``, ``hf_token=…``) and a netrc ``password`` field.
"""

from __future__ import annotations

import os
import re

REDACTED = "[redacted]"
# Names of environment variables whose values must never leave the process.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL|AUTH", re.I)
# user:password in a URL's authority; the user name stays (it says which account).
URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s/@:'\"]*:)(?P<value>[^\s/@'\"]+)(?=@)", re.I
)
# A key naming a secret (the whole key or its last ``_``/``-``/``.`` part), then ``=`` or ``:``
# and a value. Narrower than SECRET_NAME: ``tokenizer:`` or ``max_new_tokens:`` are no secrets.
SECRET_KEY = re.compile(
    r"(?P<head>(?:^|[\s\"'{,;])(?:[\w.-]*?(?<![a-z0-9])"
    r"(?:password|passwd|secret|secret_?key|secret_?access_?key|client_?secret|api_?key|"
    r"access_?key|private_?key|credentials?|(?:hf|auth|access|api|bearer|session|refresh|"
    r"github|gh|gitlab|mlflow|wandb|dvc|security)_?token)|token)"
    r"[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"',;}]+)",
    re.I,
)
NETRC_PASSWORD = re.compile(r"(?P<head>\b(?:password|passwd)\s+)(?P<value>\S+)")
NETRC_LINE = re.compile(r"\b(?:machine|default)\b.*\b(?:login|password)\b")


def secret_values() -> list[str]:
    """Values of secret-looking environment variables (long enough to be worth matching),
    longest first so a value containing another is replaced whole."""
    values = {v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def _redact(pattern: re.Pattern[str], text: str) -> tuple[str, int]:
    """Replace the ``value`` group of each match (already redacted ones are not counted)."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if match["value"] == REDACTED:
            return match[0]
        count += 1
        return match["head"] + REDACTED

    return pattern.sub(replace, text), count


def scrub_values(text: str, secrets: list[str]) -> tuple[str, int]:
    """``text`` with every secret value and URL password replaced; and how many were."""
    count = 0
    for secret in secrets:
        if secret in text:
            count += text.count(secret)
            text = text.replace(secret, REDACTED)
    text, urls = _redact(URL_PASSWORD, text)
    return text, count + urls


def scrub_config_line(line: str) -> tuple[str, int]:
    """A configuration line with the value of a secret-naming key (or netrc password) replaced."""
    line, keys = _redact(SECRET_KEY, line)
    netrc = 0
    if NETRC_LINE.search(line):
        line, netrc = _redact(NETRC_PASSWORD, line)
    return line, keys + netrc
