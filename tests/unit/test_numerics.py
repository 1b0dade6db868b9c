"""The numeric code path pin (reprolm.numerics) and its manifest record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reprolm import environment, numerics

ROOT = Path(__file__).resolve().parents[2]
# /proc/cpuinfo of CPUs that cannot exist on the machines that run these tests: they stand in
# for an x86-64 CPU without AVX2 (Sandy Bridge: AVX only) and an ARM server, so the refusal is
# tested without such a machine.
NO_AVX2_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt aes avx
"""
AVX2_CPUINFO = NO_AVX2_CPUINFO.replace("popcnt aes avx", "popcnt aes avx fma avx2")
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"


def test_pin_overrides_user_values() -> None:
    env = {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO"}
    assert numerics.pin(env)
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["MKL_CBWR"] == "AVX2,STRICT"
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2"


def test_native_escape_leaves_the_environment() -> None:
    env = {"REPROLM_NUMERICS": "native", "ATEN_CPU_CAPABILITY": "avx512"}
    assert not numerics.pin(env)
    assert env["ATEN_CPU_CAPABILITY"] == "avx512"
    assert numerics.capture(env)["pinned"] is False


def test_runner_import_pins_before_torch_loads() -> None:
    code = (
        "import sys, json, reprolm.runner\n"
        "loaded = 'torch' in sys.modules\n"
        "import torch\n"
        "print(json.dumps([loaded, torch.backends.cpu.get_cpu_capability()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATEN_CPU_CAPABILITY": "default"}
    env.pop("REPROLM_NUMERICS", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, "AVX2"]


def test_manifest_environment_records_numerics() -> None:
    block = environment.capture(1)["numerics"]
    assert set(block) >= {"pinned", "pinned_isa", "variables", "cpu_model", "cpu_flags", "blas"}
    assert "ATEN_CPU_CAPABILITY" in block["variables"]
    assert isinstance(block["cpu_flags"], dict)


def test_pin_refuses_an_x86_cpu_without_avx2() -> None:
    env = {"ATEN_CPU_CAPABILITY": "default"}
    with pytest.raises(numerics.NumericsError) as refused:
        numerics.pin(env, cpuinfo=NO_AVX2_CPUINFO, machine="x86_64")
    message = str(refused.value)
    assert "E5-2670" in message and "has no avx2" in message
    assert "ISA flags found: sse4_2, avx)" in message
    assert "REPROLM_NUMERICS=native" in message and "not expected to match" in message
    assert env == {"ATEN_CPU_CAPABILITY": "default"}  # nothing pinned


def test_pin_refuses_a_cpu_that_is_not_x86_64() -> None:
    with pytest.raises(numerics.NumericsError, match=r"aarch64, not x86-64.*REPROLM_NUMERICS"):
        numerics.pin({}, cpuinfo=ARM_CPUINFO, machine="aarch64")


def test_pin_accepts_avx2_and_native_escape_runs_anywhere() -> None:
    assert numerics.pin({}, cpuinfo=AVX2_CPUINFO, machine="x86_64")
    env = {"REPROLM_NUMERICS": "native"}
    assert not numerics.pin(env, cpuinfo=NO_AVX2_CPUINFO, machine="x86_64")
    assert not numerics.pin(env, cpuinfo=ARM_CPUINFO, machine="aarch64")
    assert env == {"REPROLM_NUMERICS": "native"}


def test_runner_refuses_a_job_at_start_on_a_cpu_without_avx2(tmp_path, monkeypatch) -> None:
    from reprolm.recipe import load_recipe, stage_config
    from reprolm.runner import execute

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(NO_AVX2_CPUINFO)
    monkeypatch.setattr(numerics, "CPUINFO", cpuinfo)
    monkeypatch.setattr(numerics.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("REPROLM_NUMERICS", raising=False)
    monkeypatch.chdir(tmp_path)
    ran = []
    config = stage_config(load_recipe({"name": "t", "threads": 1}), "world")
    output = tmp_path / "artifacts" / "world" / "x-0"
    with pytest.raises(numerics.NumericsError, match="has no avx2"):
        execute("world", lambda *a: ran.append(a), config, {}, output, reproducibility={})
    assert not ran and not output.exists()


def test_blas_record_does_not_depend_on_library_load_order(monkeypatch):
    """numpy and scipy each bundle an OpenBLAS; threadpoolctl lists them in load order, which
    varied between two jobs of one run (a diff test saw `openblas.version` change)."""
    import threadpoolctl

    from reprolm import numerics

    pools = [
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.30",
         "architecture": "Haswell", "filepath": "/x/scipy.libs/libscipy_openblas-6cdc.so"},
        {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31",
         "architecture": "Haswell", "filepath": "/x/numpy.libs/libscipy_openblas64_-32a4.so"},
        {"user_api": "openmp", "internal_api": "openmp", "filepath": "/x/libgomp.so.1"},
    ]  # fmt: skip
    records = []
    for order in (pools, pools[::-1]):
        monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda order=order: list(order))
        records.append(numerics._blas())
    assert records[0] == records[1]
    assert set(records[0]) == {"libscipy_openblas-6cdc.so", "libscipy_openblas64_-32a4.so"}
