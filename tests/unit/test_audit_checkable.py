"""Broken versus not checkable here: what a DVC record or an MLflow run status means for
``reprolm audit`` when the store is absent, empty, unreachable or another project's."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from reprolm.commands.lineage import _required
from reprolm.dvc.records import judge
from reprolm.tracking.queries import judge_run, unavailable_store

MD5 = "0123456789abcdef0123456789abcdef.dir"


def record(**changes):
    base = {
        "tracked": True, "stage": "world", "md5": MD5, "nfiles": 3, "workspace": "clean",
        "in_cache": True, "in_remote": True, "remote": "local",
    }  # fmt: skip
    return {**base, **changes}


def test_dvc_without_cache_or_a_reachable_remote_is_not_checkable():
    assert judge(record())[0] is True
    assert judge(record(in_cache=False))[0] is True  # the remote holds it
    ok, detail = judge(record(in_cache=False, in_remote=None))
    assert ok is None and "remote local is unreachable" in detail
    ok, detail = judge(record(in_cache=False, in_remote=None, remote=None))
    assert ok is None and "no remote is configured" in detail


def test_dvc_record_that_does_not_hold_is_broken():
    assert judge(record(workspace="modified"))[0] is False
    assert judge(record(workspace="modified", in_cache=False, in_remote=None))[0] is False
    assert judge(record(in_cache=False, in_remote=False))[0] is False  # the remote lacks it


MANIFEST = {"stage": "sft", "fingerprint": "f" * 12, "digest": "d" * 64, "mlflow_run_id": "r1"}


def status(**changes):
    base = {
        "exists": False, "run_id": "r1", "fingerprint": None, "digest": None, "stage": None,
        "status": None, "spooled": False, "reachable": True, "error": None, "store": None,
        "experiment": None, "experiment_created": None,
    }  # fmt: skip
    return {**base, **changes}


def test_mlflow_store_absent_empty_or_without_the_experiment_is_not_checkable():
    assert judge_run(MANIFEST, status(store="no tracking store at /x/mlruns.db"))[0] is None
    ok, detail = judge_run(MANIFEST, status(experiment=False))
    assert ok is None and "has no experiment" in detail
    assert judge_run(MANIFEST, status(reachable=False, error="ConnectionError"))[0] is None


def test_mlflow_store_whose_experiment_is_younger_than_the_job_is_not_checkable():
    manifest = {**MANIFEST, "execution": {"ended": "2026-12-01T10:00:00+00:00"}}
    ended_ms = 1_796_119_200_000  # 2026-12-01T10:00:00Z
    ok, detail = judge_run(manifest, status(experiment=True, experiment_created=ended_ms + 60_000))
    assert ok is None and "created at 2026-12-01T10:01:00+00:00, after the job ended" in detail
    # Created before the job ended (whole-second times: within 2 s counts as before): broken.
    for created in (ended_ms - 3_600_000, ended_ms + 1_500):
        ok, detail = judge_run(manifest, status(experiment=True, experiment_created=created))
        assert ok is False and "not found" in detail


def test_mlflow_store_with_the_experiment_but_not_the_run_or_other_tags_is_broken():
    ok, detail = judge_run(MANIFEST, status(experiment=True))
    assert ok is False and "not found" in detail
    found = status(exists=True, experiment=None, stage="sft", fingerprint="f" * 12)
    assert judge_run(MANIFEST, {**found, "digest": "d" * 64})[0] is True
    ok, detail = judge_run(MANIFEST, {**found, "digest": "0" * 64})
    assert ok is False and "tag digest" in detail


def test_unavailable_store_reads_without_writing(tmp_path):
    db = tmp_path / "mlruns.db"
    assert "no tracking store" in unavailable_store(f"sqlite:///{db}")
    db.touch()
    assert "is empty" in unavailable_store(f"sqlite:///{db}")
    assert db.stat().st_size == 0  # asking created no tables
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE experiments (name TEXT)")
        conn.commit()
    assert unavailable_store(f"sqlite:///{db}") is None
    assert unavailable_store("http://127.0.0.1:1") is None  # a server: asked, not guessed


def test_require_takes_a_comma_list():
    assert _required(["mlflow,dvc"]) == ("mlflow", "dvc")
    assert _required(["dvc", "dvc, mlflow, "]) == ("dvc", "mlflow")
    assert _required(None) == ()
    assert _required(["mlflow,git"]) is None


def test_audit_refuses_an_unknown_requirement(tmp_path):
    from reprolm.audit import audit

    with pytest.raises(ValueError, match="cannot require git"):
        audit(tmp_path, require=("git",))
