"""Progress of long stage work, with ETA: a tqdm bar on a terminal, periodic lines in a log.

``Progress(name, total, unit)`` is the one progress object of every stage (curate, tokenize,
the training stages, evaluate). When stderr is a terminal it draws a tqdm bar; when it is not
(a Snakemake or SLURM log) it writes a concise line every ``REPROLM_PROGRESS_INTERVAL`` seconds
(default 30) and at every tenth of the total, and one last line when the work ends::

    pretrain: step 40/200 (20%), 12.3 steps/s, ETA 0:00:13, loss 3.21

Everything goes to stderr: progress never writes a payload byte, and reads nothing a result
depends on. ``REPROLM_PROGRESS``: ``auto`` (default), ``bar``, ``log`` or ``off``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

ENV_MODE = "REPROLM_PROGRESS"
ENV_INTERVAL = "REPROLM_PROGRESS_INTERVAL"
MODES = ("auto", "bar", "log", "off")
DEFAULT_INTERVAL = 30.0
FRACTION = 0.1  # a log line at every tenth of the total


def duration(seconds: float) -> str:
    """``H:MM:SS`` (``?`` when unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def rate_text(rate: float) -> str:
    """A rate with three significant figures, thousands as ``k`` (``12.3``, ``4.56k``)."""
    if rate >= 1000:
        return f"{rate / 1000:.3g}k"
    return f"{rate:.3g}"


def progress_line(
    name: str, unit: str, done: int, total: int | None, rate: float, fields: dict[str, Any]
) -> str:
    """One log line: ``name: unit done/total (pct%), rate units/s, ETA h:mm:ss, key value``."""
    parts = [f"{name}: {unit} {done}/{total} ({100 * done // max(total, 1)}%)" if total
             else f"{name}: {unit} {done}"]  # fmt: skip
    parts.append(f"{rate_text(rate)} {unit}s/s")
    if total:
        parts.append(f"ETA {duration((total - done) / rate) if rate > 0 else '?'}")
    for key, value in fields.items():
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts)


def _mode(stream: IO[str]) -> str:
    mode = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        print(f"{ENV_MODE}={mode!r} is not one of {MODES}; using auto", file=stream)
        mode = "auto"
    if mode == "auto":
        isatty = getattr(stream, "isatty", None)
        return "bar" if isatty is not None and isatty() else "log"
    return mode


def _interval() -> float:
    text = os.environ.get(ENV_INTERVAL)
    try:
        value = float(text) if text else DEFAULT_INTERVAL
    except ValueError:
        value = DEFAULT_INTERVAL
    return value if math.isfinite(value) and value >= 0 else DEFAULT_INTERVAL


class Progress:
    """Progress over ``total`` units (None: unknown) of one stage's work; see the module doc.

    ``enabled=False`` (a torchrun rank other than 0) shows nothing. ``mode``/``interval``/
    ``stream``/``clock`` default to the environment, stderr and ``time.monotonic``.
    """

    def __init__(
        self,
        name: str,
        total: int | None = None,
        unit: str = "item",
        *,
        initial: int = 0,
        enabled: bool = True,
        mode: str | None = None,
        interval: float | None = None,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.total, self.unit = name, total or None, unit
        self.stream = stream if stream is not None else sys.stderr
        self.mode = "off" if not enabled else (mode or _mode(self.stream))
        self.interval = _interval() if interval is None else interval
        self.clock = clock
        self.done = self.initial = initial
        self.fields: dict[str, Any] = {}
        self.started = self.last_line = clock()
        self.last_tenth, self.last_done = self._tenth(initial), initial
        self.lines = 0  # log lines written (tests, overhead figures)
        self.closed = False
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total, initial=initial, desc=name, unit=unit, file=self.stream,
                dynamic_ncols=True, mininterval=0.5, leave=True,
            )  # fmt: skip

    def _tenth(self, done: int) -> int:
        return int(done * (1 / FRACTION) // self.total) if self.total else 0

    def rate(self) -> float:
        """Units per second since this object was made (resumed units excluded)."""
        elapsed = self.clock() - self.started
        return (self.done - self.initial) / elapsed if elapsed > 0 else 0.0

    def set(self, done: int, **fields: Any) -> None:
        """Move to ``done`` units (e.g. the trainer's global step); ``fields`` join the line."""
        if self.mode == "off" or self.closed:
            return
        step, self.done = done - self.done, done
        self.fields.update(fields)
        if self.bar is not None:
            if fields:
                self.bar.set_postfix(self.fields, refresh=False)
            self.bar.update(step)
            return
        now, tenth = self.clock(), self._tenth(done)
        if tenth > self.last_tenth or now - self.last_line >= self.interval:
            self._line(now, tenth)

    def update(self, count: int = 1, **fields: Any) -> None:
        """``count`` more units done."""
        self.set(self.done + count, **fields)

    def note(self, **fields: Any) -> None:
        """Fields for the next line (e.g. the last logged loss) without moving."""
        self.fields.update(fields)
        if self.bar is not None:
            self.bar.set_postfix(self.fields, refresh=False)

    def _line(self, now: float, tenth: int) -> None:
        line = progress_line(self.name, self.unit, self.done, self.total, self.rate(), self.fields)
        print(line, file=self.stream, flush=True)
        self.last_line, self.last_tenth, self.last_done = now, tenth, self.done
        self.lines += 1

    def close(self) -> None:
        """The last line (log mode: unless the last one already said it) or the bar's end."""
        if self.closed or self.mode == "off":
            self.closed = True
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
            return
        if self.lines == 0 or self.last_done != self.done:
            self._line(self.clock(), self._tenth(self.done))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(
    items: Iterable[Any], name: str, unit: str, total: int | None = None, **options: Any
) -> Iterator[Any]:
    """Iterate ``items`` with a ``Progress`` (``total`` defaults to ``len(items)`` if known)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(name, total, unit, **options) as progress:
        for item in items:
            yield item
            progress.update()


class TqdmShim:
    """What lm-eval's models call on ``tqdm(...)`` (iterate, ``update``, ``close``), driven by a
    ``Progress``: its request bars become this stage's progress (a bar or log lines)."""

    def __init__(self, name: str, unit: str, iterable: Iterable[Any] | None = None,
                 total: int | None = None, disable: bool = False, **_: Any) -> None:  # fmt: skip
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable = iterable
        self.progress = Progress(name, total, unit, enabled=not disable)

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.progress.update()
        self.progress.close()

    def update(self, count: int = 1) -> None:
        self.progress.update(count)

    def set_postfix(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        self.progress.close()

    def __enter__(self) -> TqdmShim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tqdm_factory(name: str, unit: str) -> Callable[..., TqdmShim]:
    """A stand-in for ``tqdm`` that reports as ``name`` in ``unit``s (see ``TqdmShim``)."""

    def make(iterable: Iterable[Any] | None = None, *args: Any, **kwargs: Any) -> TqdmShim:
        return TqdmShim(name, unit, iterable, *args, **kwargs)

    return make
