"""stages.common.progress: the line format, how often lines are written, terminal vs log, and
live metrics that never block a job whose tracking server is away (reprolm.tracking.live)."""

from __future__ import annotations

import io
import time

import pytest

from stages.common.progress import (
    ENV_INTERVAL,
    ENV_MODE,
    Progress,
    duration,
    progress_line,
    tqdm_factory,
    track,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_line_format():
    line = progress_line("pretrain", "step", 40, 200, 12.3, {"loss": 3.2104})
    assert line == "pretrain: step 40/200 (20%), 12.3 steps/s, ETA 0:00:13, loss 3.21"
    assert progress_line("tokenize", "document", 4000, None, 1234.5, {}) == (
        "tokenize: document 4000, 1.23k documents/s"
    )
    assert progress_line("x", "step", 0, 10, 0.0, {}).endswith("ETA ?")
    assert duration(3725) == "1:02:05" and duration(float("inf")) == "?"


def test_log_lines_every_tenth_and_interval_not_every_step():
    clock, out = Clock(), io.StringIO()
    progress = Progress("pretrain", 1000, "step", mode="log", interval=30, stream=out, clock=clock)
    for _ in range(1000):
        clock.now += 0.01  # 10 s in all: the interval never fires, the tenths do
        progress.update(loss=2.5)
    progress.close()
    written = lines(out)
    assert len(written) == 10, written
    assert written[0] == "pretrain: step 100/1000 (10%), 100 steps/s, ETA 0:00:09, loss 2.5"
    assert written[-1].startswith("pretrain: step 1000/1000 (100%)")


def test_log_interval_fires_between_tenths_and_close_says_the_end():
    clock, out = Clock(), io.StringIO()
    progress = Progress("curate", 100, "document", mode="log", interval=5, stream=out, clock=clock)
    for _ in range(3):
        clock.now += 6
        progress.update()
    assert lines(out) == [
        "curate: document 1/100 (1%), 0.167 documents/s, ETA 0:09:54",
        "curate: document 2/100 (2%), 0.167 documents/s, ETA 0:09:48",
        "curate: document 3/100 (3%), 0.167 documents/s, ETA 0:09:42",
    ]
    clock.now += 1
    progress.update(2)  # under the interval, no tenth crossed: silent
    assert len(lines(out)) == 3
    progress.close()
    assert lines(out)[-1].startswith("curate: document 5/100 (5%)")
    progress.close()  # idempotent
    assert len(lines(out)) == 4


def test_resumed_steps_do_not_count_in_the_rate():
    clock, out = Clock(), io.StringIO()
    progress = Progress("sft", 100, "step", initial=50, mode="log", interval=0, stream=out,
                        clock=clock)  # fmt: skip
    clock.now += 10
    progress.set(60)
    assert lines(out) == ["sft: step 60/100 (60%), 1 steps/s, ETA 0:00:40"]


def test_terminal_draws_a_tqdm_bar_and_logs_get_plain_lines(monkeypatch):
    monkeypatch.delenv(ENV_MODE, raising=False)
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        with Progress("tokenize", 50, "document", stream=stream, interval=1000) as progress:
            for _ in range(50):
                progress.update()
    assert "\r" in terminal.getvalue() and "50/50" in terminal.getvalue()
    assert "|" in terminal.getvalue()  # the bar
    assert "\r" not in log.getvalue()
    assert len(lines(log)) == 10 and lines(log)[-1].startswith("tokenize: document 50/50")


@pytest.mark.parametrize(("value", "expected"), [("off", ""), ("log", "x: item 2/2 (100%)")])
def test_environment_chooses_the_mode(monkeypatch, value, expected):
    monkeypatch.setenv(ENV_MODE, value)
    out = Terminal()
    for _ in track([1, 2], "x", "item", stream=out):
        pass
    assert (lines(out) or [""])[-1].startswith(expected) and "\r" not in out.getvalue()


def test_bad_environment_values_fall_back(monkeypatch):
    monkeypatch.setenv(ENV_MODE, "loud")
    monkeypatch.setenv(ENV_INTERVAL, "soon")
    out = io.StringIO()
    progress = Progress("x", 10, "item", stream=out)
    assert progress.mode == "log" and progress.interval == 30
    assert "REPROLM_PROGRESS='loud' is not one of" in out.getvalue()


def test_disabled_rank_writes_nothing():
    out = Terminal()
    with Progress("pretrain", 10, "step", enabled=False, stream=out) as progress:
        progress.update(10, loss=1.0)
    assert out.getvalue() == ""


def test_tqdm_shim_stands_in_for_lm_eval_bars(monkeypatch, capsys):
    monkeypatch.setenv(ENV_MODE, "log")
    make = tqdm_factory("evaluate", "request")
    assert list(make([1, 2, 3])) == [1, 2, 3]
    bar = make(total=4, desc="Running loglikelihood requests")
    for _ in range(4):
        bar.update(1)
    bar.close()
    make(total=4, disable=True).update(4)
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("evaluate: request 4/4 (100%)"), err
    assert err[2].startswith("evaluate: request 3/3 (100%)") or "3/3" in "".join(err)


def test_overhead_per_update_is_microseconds():
    out = io.StringIO()
    progress = Progress("pretrain", 100_000, "step", mode="log", stream=out)
    started = time.perf_counter()
    for step in range(1, 100_001):
        progress.set(step, loss=1.0)
    per_update = (time.perf_counter() - started) / 100_000
    progress.close()
    print(f"progress: {per_update * 1e6:.2f} us per update (log mode)")
    assert per_update < 50e-6
    assert len(lines(out)) <= 12


# ----------------------------------------------------------------------- live metrics


@pytest.fixture
def tracking_env(monkeypatch, tmp_path):
    from reprolm import tracking
    from tests.integration.mlflow_server import free_port

    for name in (tracking.ENV_INVOCATION, tracking.ENV_PARENT, "REPROLM_MLFLOW_LIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setenv(tracking.ENV_ENABLE, "on")
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_live_is_on_only_where_a_job_logs_its_own_run(tracking_env):
    from reprolm.tracking import live

    assert live.live_enabled()  # a server: direct mode
    tracking_env.setenv("REPROLM_MLFLOW_LIVE", "off")
    assert not live.live_enabled()
    tracking_env.delenv("REPROLM_MLFLOW_LIVE")
    tracking_env.setenv("REPROLM_MLFLOW_MODE", "deferred")
    assert not live.live_enabled()
    tracking_env.delenv("MLFLOW_TRACKING_URI")
    tracking_env.delenv("REPROLM_MLFLOW_MODE")
    assert not live.live_enabled()  # the embedded store defaults to deferred
    tracking_env.setenv("REPROLM_MLFLOW", "off")
    tracking_env.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert not live.live_enabled()


def test_live_never_blocks_when_the_server_is_away(tracking_env, capsys):
    from reprolm.tracking import live

    tracking_env.setenv(live.ENV_LIVE_INTERVAL, "0.05")
    sender = live.start("pretrain", "f" * 12)
    assert sender is not None
    started = time.perf_counter()
    for step in range(1, 2001):
        sender.log(step, {"loss": 3.0, "learning_rate": 1e-3, "epoch": step / 2000, "x": "text"})
    per_log = (time.perf_counter() - started) / 2000
    time.sleep(0.3)  # several send attempts fail meanwhile
    started = time.perf_counter()
    sender.close()
    closed_in = time.perf_counter() - started
    assert sender.run_id is None and sender.sent == 0
    assert len(sender._pending) == 2000 * 3  # kept (numbers only) for a server that comes back
    assert per_log < 1e-3 and closed_in < 5, (per_log, closed_in)
    err = capsys.readouterr().err
    assert err.count("reprolm mlflow live:") == 1, err  # one warning, not one per retry
    assert "not reachable" in err
    assert live.take_id() == sender.live_id and live.take_id() is None
    print(f"live: {per_log * 1e6:.1f} us per log() call; close {closed_in:.2f} s, server away")
