"""Payload hashing and manifest verification."""

import os

import pytest

from reprolm.hashing import hash_file, hash_payload, payload_digest
from reprolm.manifest import ManifestError, read_manifest, verify_payload


def _payload(root):
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    return root


def test_digest_depends_on_content_and_names_not_mtime(tmp_path):
    one, two = _payload(tmp_path / "one"), _payload(tmp_path / "two")
    os.utime(two / "a.txt", (1, 1))
    assert payload_digest(hash_payload(one)) == payload_digest(hash_payload(two))
    (two / "a.txt").write_bytes(b"alphb")
    assert payload_digest(hash_payload(one)) != payload_digest(hash_payload(two))
    (two / "a.txt").write_bytes(b"alpha")
    (two / "a.txt").rename(two / "c.txt")
    assert payload_digest(hash_payload(one)) != payload_digest(hash_payload(two))


def test_manifest_file_is_not_payload(tmp_path):
    root = _payload(tmp_path / "a")
    before = hash_payload(root)
    (root / "provenance.json").write_text("{}")
    assert hash_payload(root) == before
    assert sorted(before) == ["a.txt", "sub/b.bin"]
    assert before["a.txt"]["size"] == 5


def test_symlinks_are_refused(tmp_path):
    root = _payload(tmp_path / "a")
    (root / "link").symlink_to(root / "a.txt")
    with pytest.raises(ValueError, match="symlink"):
        hash_payload(root)


def test_hash_file_matches_known_blake3(tmp_path):
    (tmp_path / "e").write_bytes(b"")
    assert hash_file(tmp_path / "e").startswith("af1349b9f5f9a1a6a0404dea36dcc949")


def test_verify_payload_names_each_difference(tmp_path):
    import json

    root = _payload(tmp_path / "a")
    files = hash_payload(root)
    manifest = {
        "stage": "world",
        "fingerprint": "0123456789ab",
        "digest": payload_digest(files),
        "files": files,
    }
    (root / "provenance.json").write_text(json.dumps(manifest))
    assert verify_payload(root) == []
    (root / "a.txt").write_bytes(b"tampered")
    (root / "sub" / "b.bin").unlink()
    (root / "new").write_text("x")
    assert verify_payload(root) == [
        "missing: sub/b.bin",
        "unexpected: new",
        "size changed: a.txt (recorded 5 bytes, 8 on disk)",
    ]


def test_read_manifest_errors_name_the_file(tmp_path):
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path)
    (tmp_path / "provenance.json").write_text('{"stage": 1,\n oops}')
    with pytest.raises(ManifestError, match=r"provenance.json:2"):
        read_manifest(tmp_path)
    (tmp_path / "provenance.json").write_text('{"stage": "x"}')
    with pytest.raises(ManifestError, match="fingerprint"):
        read_manifest(tmp_path)


def test_symlinked_directories_are_refused_not_skipped(tmp_path):
    """os.walk does not descend into a symlinked directory: unchecked, its files would be
    invisible to hashing (and so to verify, audit, rebuild and dvc commit)."""
    from reprolm.hashing import PayloadError

    root = _payload(tmp_path / "a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x").write_text("x")
    (root / "sub" / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PayloadError, match="sub/linked: a symlinked directory"):
        hash_payload(root)


def test_special_files_are_refused(tmp_path):
    from reprolm.hashing import PayloadError

    root = _payload(tmp_path / "a")
    os.mkfifo(root / "pipe")
    with pytest.raises(PayloadError, match="pipe: not a regular file"):
        hash_payload(root)
