"""The saved dirty-tree diff holds no credential, still names every changed file, and applies.

Each test plants one kind of secret in a real git checkout, lets ``environment.git_state`` save
the diff as a job would, and reads the patch back.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reprolm import environment, saveddiff
from reprolm.scrubbing import REDACTED
from reprolm.tracking import scrub

HF = "hf_plantedHFtoken0123456789"
PASSWORD = "Pl4nted-pa55word"
COMMITTED = {
    ".dvc/config": "[core]\n    remote = local\n['remote \"local\"']\n    url = ../store\n",
    "config/recipe.yaml": "name: micro\ntokenizer: path/to/tok\nsteps: 3\n",
    "stages/world/stage.py": "def run(config):\n    token = config['tokenizer']\n    return 1\n",
    "notes.txt": "plain text\n",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A committed checkout (``COMMITTED`` plus force-added credentials files), secrets in env."""
    monkeypatch.setenv("HF_TOKEN", HF)
    root = tmp_path / "repo"
    for name, text in {
        **COMMITTED, ".dvc/config.local": "", ".netrc": "", "certs/client.pem": "",
    }.items():  # fmt: skip
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root.parent, "init", "-q", str(root))
    git(root, "add", "-f", ".")
    git(root, "commit", "-qm", "init")
    return root


def save(repo: Path) -> tuple[dict, str]:
    """The git state a job records, and the text of the saved patch."""
    state = environment.git_state(repo, diff_dir=repo.parent / "diffs")
    assert state["dirty"] is True
    return state, (repo.parent / "diffs" / f"{state['diff_hash']}.patch").read_text()


def append(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text((repo / name).read_text() + text)


def assert_applies(repo: Path, patch: str, tmp_path: Path) -> Path:
    """Apply the saved patch to a clean clone of the commit, as ``reprolm rebuild`` does."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (tmp_path / "saved.patch").write_text(patch)
    if saveddiff.has_changes(patch):
        git(clone, "apply", "--whitespace=nowarn", str(tmp_path / "saved.patch"))
    return clone


def test_credentialed_dvc_remote_url_is_scrubbed_and_the_rest_survives(repo, tmp_path):
    url = f"https://alice:{PASSWORD}@dvc.example/x"
    append(repo, ".dvc/config", f"['remote \"s3\"']\n    url = {url}\n")
    append(repo, ".dvc/config", f"    password = {PASSWORD}2\n    user = alice\n")
    append(repo, "notes.txt", "a harmless change\n")
    state, patch = save(repo)
    assert PASSWORD not in patch
    assert f"https://alice:{REDACTED}@dvc.example/x" in patch
    assert f"+    password = {REDACTED}" in patch and "+    user = alice" in patch
    assert "+a harmless change" in patch
    assert "scrubbed .dvc/config: 2 secret(s)" in patch
    # The hash names the saved text, not the one with the password.
    assert state["diff_hash"] == environment.hash_bytes(patch.encode())
    clone = assert_applies(repo, patch, tmp_path)
    assert "a harmless change" in (clone / "notes.txt").read_text()
    assert f"alice:{REDACTED}@" in (clone / ".dvc/config").read_text()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (".dvc/config.local", f"['remote \"s3\"']\n    secret_access_key = {PASSWORD}\n"),
        (".netrc", f"machine dvc.example login alice password {PASSWORD}\n"),
        ("certs/client.pem", f"-----BEGIN PRIVATE KEY-----\n{PASSWORD}\n"),
    ],
)
def test_credentials_files_are_withheld_and_named(repo, tmp_path, name, text):
    append(repo, name, text)
    append(repo, "stages/world/stage.py", "# an uncommitted edit of job code\n")
    _, patch = save(repo)
    assert PASSWORD not in patch
    assert f"withheld {name}: a credentials file by name" in patch
    assert f"diff --git a/{name}" not in patch
    assert "+# an uncommitted edit of job code" in patch
    clone = assert_applies(repo, patch, tmp_path)
    assert "uncommitted edit" in (clone / "stages/world/stage.py").read_text()
    assert (clone / name).read_text() == ""  # the withheld change is not re-created


def test_private_key_in_any_file_withholds_it(repo):
    append(repo, "notes.txt", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PASSWORD}\n")
    _, patch = save(repo)
    assert PASSWORD not in patch
    assert "withheld notes.txt: it holds a private key" in patch


def test_netrc_style_lines_and_secret_keys_in_a_recipe_are_scrubbed(repo):
    append(repo, "config/recipe.yaml", f"# machine hub.example login bob password {PASSWORD}\n")
    append(repo, "config/recipe.yaml", f"hf_token: {HF}x\n")
    append(repo, "config/recipe.yaml", f"# export MLFLOW_TRACKING_PASSWORD={PASSWORD}3\n")
    append(repo, "config/recipe.yaml", "max_new_tokens: 16\n")
    _, patch = save(repo)
    assert PASSWORD not in patch and HF not in patch
    assert f"password {REDACTED}" in patch and f"hf_token: {REDACTED}" in patch
    assert "+max_new_tokens: 16" in patch  # a key that only contains "token" is no secret
    assert "tokenizer: path/to/tok" in patch


def test_environment_secret_in_job_code_is_scrubbed_but_code_assignments_stay(repo, tmp_path):
    append(repo, "stages/world/stage.py", f"URL = 'https://hub.example/?t={HF}'\ntoken = 'x' * 9\n")
    _, patch = save(repo)
    assert HF not in patch
    assert f"+URL = 'https://hub.example/?t={REDACTED}'" in patch
    assert "+token = 'x' * 9" in patch  # code: an assignment to ``token`` is not a secret
    assert "scrubbed stages/world/stage.py: 1 secret(s)" in patch
    assert_applies(repo, patch, tmp_path)


def test_secret_in_a_kept_line_withholds_the_file_so_the_rest_still_applies(repo, tmp_path):
    append(repo, ".dvc/config", f"    password = {PASSWORD}\n")
    git(repo, "commit", "-qam", "a committed secret")  # now it is a context line of the diff
    append(repo, ".dvc/config", "    ssl_verify = false\n")
    append(repo, "notes.txt", "kept\n")
    _, patch = save(repo)
    assert PASSWORD not in patch
    assert "withheld .dvc/config: lines it keeps from the commit hold a secret" in patch
    clone = assert_applies(repo, patch, tmp_path)
    assert (clone / "notes.txt").read_text().endswith("kept\n")


def test_every_file_withheld_leaves_a_patch_of_notes_only(repo):
    append(repo, ".netrc", f"machine h login u password {PASSWORD}\n")
    _, patch = save(repo)
    assert not saveddiff.has_changes(patch)
    assert saveddiff.notes(patch)[1:] == [
        "withheld .netrc: a credentials file by name; its change is not saved"
    ]


def test_a_clean_diff_is_saved_unchanged(repo):
    append(repo, "notes.txt", "nothing secret\n")
    _, patch = save(repo)
    assert patch == git(repo, "diff", "HEAD", "--binary").strip() + "\n"
    assert saveddiff.notes(patch) == []


def test_tracking_scrub_masks_url_passwords_too(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF)
    event = {"uri": f"https://alice:{PASSWORD}@mlflow.example", "note": f"token {HF}"}
    assert scrub(event) == {
        "uri": f"https://alice:{REDACTED}@mlflow.example", "note": f"token {REDACTED}",
    }  # fmt: skip


def test_a_change_in_a_file_that_is_not_utf8_is_saved_byte_for_byte(repo, tmp_path):
    (repo / "notes.txt").write_bytes(b"plain text\ncaf\xe9 au lait\n")  # Latin-1, not UTF-8
    append(repo, ".dvc/config", f"    url = https://alice:{PASSWORD}@h.example\n")
    state = environment.git_state(repo, diff_dir=tmp_path / "diffs")
    patch = (tmp_path / "diffs" / f"{state['diff_hash']}.patch").read_bytes()
    assert b"+caf\xe9 au lait" in patch and PASSWORD.encode() not in patch
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "apply", str(tmp_path / "diffs" / f"{state['diff_hash']}.patch"))
    assert (clone / "notes.txt").read_bytes() == b"plain text\ncaf\xe9 au lait\n"
