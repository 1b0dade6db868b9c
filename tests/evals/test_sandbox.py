"""The code sandbox (evals/sandbox.py): one test per guarantee, each with a program that would
break it. SECURITY.md lists these tests."""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from evals import sandbox
from evals.sandbox import Limits, run_program

NS = sandbox.namespaces_available()
needs_ns = pytest.mark.skipif(not NS, reason="no user/network namespaces on this kernel")
QUICK = Limits(wall_seconds=5, cpu_seconds=5)


def test_a_passing_program_passes_and_an_early_exit_does_not():
    assert run_program("assert 1 + 1 == 2", QUICK)[0].status == "passed"
    failed = run_program("assert 1 == 2, 'nope'", QUICK)[0]
    assert (failed.status, failed.reason) == ("failed", "AssertionError: nope")
    # Exiting with status 0 before the tests ran is no pass.
    for early in ("import sys; sys.exit(0)\nassert False", "import os; os._exit(0)\nassert False"):
        outcome = run_program(early, QUICK)[0]
        assert outcome.status == "failed" and "before the program's end" in outcome.reason


def test_an_infinite_loop_times_out_and_the_whole_group_is_killed():
    # The grandchild prints its pid as this machine sees it (/proc belongs to the outer
    # namespace), leaves the process group where namespaces allow it (setsid), and loops.
    leave = "os.setsid()\n        " if NS else ""
    source = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        f"        {leave}print('grandchild', os.readlink('/proc/self'), flush=True)\n"
        "        while True: time.sleep(0.05)\n"
        "time.sleep(0.3)\n"
        "while True: pass\n"
    )
    outcome, text = run_program(source, Limits(wall_seconds=1.5, cpu_seconds=10))
    assert outcome.status == "timeout" and "group killed" in outcome.reason
    pid = int(next(x for x in text.splitlines() if x.startswith("grandchild")).split()[1])
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split(")")[1].split()[0] in ("Z", "X")


def test_the_cpu_limit_stops_a_busy_program_before_the_wall_clock():
    outcome = run_program("while True: pass", Limits(wall_seconds=20, cpu_seconds=1))[0]
    assert (outcome.status, outcome.reason) == ("timeout", "CPU limit of 1 s")


def test_a_memory_bomb_fails_by_the_memory_limit():
    outcome = run_program("x = bytearray(8 << 30)", Limits(memory_bytes=512 << 20))[0]
    assert (outcome.status, outcome.reason) == ("crashed", "memory limit: MemoryError")


def test_writes_outside_the_temp_dir_do_not_happen(tmp_path):
    kept = tmp_path / "kept.txt"
    kept.write_text("mine")
    attempts = {
        f"open({str(tmp_path / 'a.txt')!r}, 'w').write('x')": tmp_path / "a.txt",
        f"import os; os.open({str(tmp_path / 'b.txt')!r}, os.O_CREAT | os.O_WRONLY)": tmp_path
        / "b.txt",
        f"import pathlib; pathlib.Path({str(tmp_path / 'c')!r}).mkdir()": tmp_path / "c",
    }
    for source, target in attempts.items():
        outcome = run_program(source, QUICK)[0]
        assert outcome.status == "crashed" and "outside the sandbox" in outcome.reason
        assert not target.exists()
    for source in (f"import os; os.remove({str(kept)!r})", f"open({str(kept)!r}, 'a')"):
        assert run_program(source, QUICK)[0].status == "crashed"
    assert kept.read_text() == "mine"
    # Inside its own directory the program may write (and it is removed afterwards).
    inside = "open('scratch.txt', 'w').write('x'); assert open('scratch.txt').read() == 'x'"
    assert run_program(inside, QUICK)[0].status == "passed"


def test_a_file_larger_than_the_limit_cannot_be_written():
    source = "open('big', 'wb').write(b'x' * (4 << 20))"
    outcome = run_program(source, Limits(file_bytes=1 << 20))[0]
    assert outcome.status != "passed"


def test_no_subprocess_and_no_ctypes():
    for source in ("import subprocess; subprocess.run(['true'])", "import os; os.system('true')",
                   "import ctypes"):  # fmt: skip
        outcome = run_program(source, QUICK)[0]
        assert outcome.status == "crashed" and "not allowed" in outcome.reason


@needs_ns
def test_a_socket_to_this_machine_cannot_be_opened():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    waiter = threading.Thread(target=lambda: accepted.append(_accept(server)))
    waiter.start()
    source = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    outcome = run_program(source, QUICK)[0]
    waiter.join()
    server.close()
    assert outcome.status == "failed" and "unreachable" in outcome.reason
    assert accepted == [None]


def _accept(server):
    try:
        return server.accept()
    except OSError:
        return None


def test_the_evaluation_process_state_is_untouched(monkeypatch):
    monkeypatch.setenv("REPROLM_TEST_SECRET", "s3cret")
    before = (os.getcwd(), dict(os.environ), sorted(sys.modules), sys.path[:])
    source = (
        "import os, sys\n"
        "assert 'REPROLM_TEST_SECRET' not in os.environ, 'environment leaked'\n"
        "assert sys.stdin is None or sys.stdin.read() == ''\n"
        "os.environ['PATH'] = ''\nos.chdir('/')\nsys.modules.clear()\n"
    )
    assert run_program(source, QUICK)[0].status == "passed"
    assert (os.getcwd(), dict(os.environ), sorted(sys.modules), sys.path[:]) == before


def test_without_namespaces_code_is_refused_unless_the_user_opts_out(monkeypatch):
    monkeypatch.setattr(sandbox, "namespaces_available", lambda: False)
    monkeypatch.delenv(sandbox.ALLOW_NETWORK_ENV, raising=False)
    with pytest.raises(sandbox.SandboxUnavailable, match="--sandbox-allow-network"):
        run_program("print(1)", QUICK)
    assert run_program("print(1)", QUICK, allow_network=True)[0].status == "passed"
    monkeypatch.setenv(sandbox.ALLOW_NETWORK_ENV, "1")
    assert run_program("print(1)", QUICK)[0].status == "passed"
