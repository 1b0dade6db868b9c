"""The saved diff of a dirty tree, with credentials taken out before it is written.

``git diff HEAD`` of a dirty checkout is saved under ``.reprolm/diffs/`` so ``reprolm rebuild``
can re-create the tree. A change to a credentials file would be saved with it; so, per file:

* **withheld**: a credentials file by name (``WITHHELD_NAMES``: DVC's ``config.local``, netrc,
  git/pip/npm credentials, ``.env``, private keys) or a private key block by content. Its
  change is not saved; a note names the file.
* **scrubbed**: an added line holding a secret (``reprolm.scrubbing``: a secret environment
  value, a URL password, and in configuration files a secret-naming key's value or a netrc
  password) has it replaced by ``[redacted]``; the change otherwise stays, and still applies.
* **withheld** too when a line the file keeps from the commit (context or removed) holds a
  secret: a scrubbed copy of those lines would not apply.

Notes at the top of the patch (``# reprolm: …`` lines, which ``git apply`` skips) name every
withheld or scrubbed file, so the diff still says what changed.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from reprolm.scrubbing import REDACTED, scrub_config_line, scrub_values, secret_values

NOTE = "# reprolm: "
# Credentials files by name (matched against the path and its last part).
WITHHELD_NAMES = (
    ".dvc/config.local", "*/.dvc/config.local", ".netrc", "_netrc", "*.netrc", ".git-credentials",
    ".pypirc", ".npmrc", ".env", ".env.*", ".envrc", "credentials", "*.pem", "*.key", "*.p12",
    "*.pfx", "id_rsa", "id_rsa.*", "id_ed25519", "id_ed25519.*", "id_ecdsa", "id_dsa",
)  # fmt: skip
# Files whose lines are code, where ``token = …`` is an assignment, not a secret.
CODE_SUFFIXES = (".py", ".pyi", ".smk", ".ipynb")
CODE_NAMES = ("Snakefile", "Makefile")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
KEPT_LINE_SECRET = (
    "lines it keeps from the commit hold a secret (a scrubbed copy would not apply); "
    "its change is not saved"
)
_HEADER = re.compile(r'^diff --git (?:"?a/.*?"? )"?b/(?P<path>.*?)"?$')


@dataclass
class SavedDiff:
    """The patch to save, and what was taken out of it (paths relative to the checkout)."""

    text: str
    withheld: dict[str, str] = field(default_factory=dict)  # path -> why
    scrubbed: dict[str, int] = field(default_factory=dict)  # path -> secrets replaced


def withheld_by_name(path: str) -> bool:
    """Whether ``path`` names a credentials file (``WITHHELD_NAMES``)."""
    name = PurePosixPath(path).name
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in WITHHELD_NAMES)


def is_code(path: str) -> bool:
    return path.endswith(CODE_SUFFIXES) or PurePosixPath(path).name in CODE_NAMES


def _sections(diff: str) -> list[list[str]]:
    """The patch split into one list of lines per file (``diff --git`` header first)."""
    sections: list[list[str]] = []
    for line in diff.split("\n"):
        if line.startswith("diff --git ") or not sections:
            sections.append([])
        sections[-1].append(line)
    return sections


def _path(section: list[str]) -> str:
    match = _HEADER.match(section[0])
    return match["path"] if match else section[0]


def _scrub_section(
    section: list[str], path: str, secrets: list[str]
) -> tuple[list[str], int, str | None]:
    """(lines, secrets replaced, why withheld or None) of one file's part of the patch."""
    if withheld_by_name(path):
        return [], 0, "a credentials file by name; its change is not saved"
    if any(PRIVATE_KEY.search(line) for line in section):
        return [], 0, "it holds a private key; its change is not saved"
    if any(line.startswith("GIT binary patch") for line in section):
        return section, 0, None  # encoded bytes: nothing a text secret pattern could match
    config = not is_code(path)
    out, count, in_hunks = [], 0, False
    for line in section:
        if line.startswith("@@"):
            in_hunks = True
        if not in_hunks or line[:1] not in (" ", "+", "-"):
            out.append(line)
            continue
        body, found = scrub_values(line[1:], secrets)
        if config:
            body, keys = scrub_config_line(body)
            found += keys
        if found and line[0] != "+":
            return [], 0, KEPT_LINE_SECRET
        count += found
        out.append(line[0] + body)
    return out, count, None


def scrub_diff(diff: str, secrets: list[str] | None = None) -> SavedDiff:
    """The saved form of ``git diff HEAD --binary`` output (see the module docstring).

    ``secrets``: the secret values to replace (default: those of this process's environment).
    """
    secrets = secret_values() if secrets is None else secrets
    kept: list[str] = []
    result = SavedDiff(text="")
    for section in _sections(diff):
        if not section[0].startswith("diff --git "):
            kept += section  # text before the first file (none from git diff)
            continue
        path = _path(section)
        lines, count, why = _scrub_section(section, path, secrets)
        if why:
            result.withheld[path] = why
        elif count:
            result.scrubbed[path] = count
        kept += lines
    notes = [f"{NOTE}withheld {path}: {why}" for path, why in result.withheld.items()] + [
        f"{NOTE}scrubbed {path}: {n} secret(s) replaced by {REDACTED}"
        for path, n in result.scrubbed.items()
    ]
    if notes:
        notes.insert(0, f"{NOTE}credentials were taken out of this diff (see SECURITY.md)")
    result.text = "\n".join(notes + kept)
    return result


def notes(patch: str) -> list[str]:
    """The ``# reprolm:`` notes of a saved patch (what was withheld or scrubbed)."""
    return [line[len(NOTE) :] for line in patch.split("\n") if line.startswith(NOTE)]


def has_changes(patch: str) -> bool:
    """Whether a saved patch changes any file (all of its files may have been withheld)."""
    return any(line.startswith("diff --git ") for line in patch.split("\n"))
