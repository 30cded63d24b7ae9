"""What an operator sees while a run goes and when it ends: confirmation, progress, summary.

On a terminal (or ``--progress on``): a live rich bar on stderr and a summary table at the
end. Otherwise: a ``run.progress`` event every ``--progress-interval`` seconds through the
diagnostics logger (default 30 s in JSON, 5 minutes in plain text, where a person reads
it); the summary after is `worker.output.summary`'s. stdout is
never written. The figures come from the run's `Tally`, which the event loop updates;
the displays read it from their own daemon thread, so they never touch the loop.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from worker.outcomes import OUTCOMES, Tally
from worker.output.logs import configure_logging, is_json
from worker.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


log = structlog.get_logger("worker.output.progress")

_TICK = 0.1  # seconds between redraws of the bar
_WINDOW = 10.0  # seconds over which rates are measured
ORDER = (*OUTCOMES, "skipped", "duplicate", "deferred")
_TEXT_INTERVAL = 300.0  # seconds between plain-text progress lines, unless set
_JSON_INTERVAL = 30.0


@dataclass(frozen=True, slots=True)
class Figures:
    """One reading of a run's tally: what both displays show."""

    settled: int
    expected: int | None
    requests: int
    elapsed_s: float
    requests_per_s: float
    eta_s: float | None
    counts: dict[str, int]
    rate_limit: float | None  # only when adaptive control holds it below the ceiling

    def as_event(self) -> dict[str, Any]:
        return {
            "settled": self.settled,
            "expected": self.expected,
            "requests": self.requests,
            "elapsed_s": round(self.elapsed_s, 1),
            "requests_per_s": round(self.requests_per_s, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s),
            "counts": self.counts,
            "rate_limit": None if self.rate_limit is None else round(self.rate_limit, 2),
        }


class Meter:
    """Reads a `Tally` from any thread; rates are over the last ten seconds of readings."""

    def __init__(self, tally: Tally, ceiling: float, clock: Any = time.monotonic) -> None:
        self._tally = tally
        self._ceiling = ceiling or None  # 0 = no limit
        self._clock = clock
        self._samples: deque[tuple[float, int, int]] = deque()

    def read(self) -> Figures:
        tally, now = self._tally, self._clock()
        # dict() of a Counter copies in one C call, under the GIL: safe against the loop.
        counts = {k: v for k, v in dict(tally.counts).items() if v}
        settled, requests = sum(counts.values()), tally.requests
        self._samples.append((now, requests, settled))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _WINDOW:
            self._samples.popleft()
        then, old_requests, old_settled = self._samples[0]
        span = now - then
        rps = (requests - old_requests) / span if span > 0 else 0.0
        pace = (settled - old_settled) / span if span > 0 else 0.0
        left = None if tally.expected is None else max(tally.expected - settled, 0)
        eta = None if left is None or pace <= 0 else left / pace
        return Figures(
            settled,
            tally.expected,
            requests,
            now - tally.started,
            rps,
            eta,
            counts,
            self._lowered(tally.rate_limit),
        )

    def _lowered(self, rate: float | None) -> float | None:
        if rate is None or (self._ceiling is not None and rate >= self._ceiling - 1e-9):
            return None
        return rate


def confirm_on_terminal(total: int | None, settings: Settings) -> bool:
    """Ask before terminating, only when a person is at a terminal and ``--yes`` is not given."""
    if settings.yes or settings.dry_run or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    count = "an unknown number of" if total is None else str(total)
    archive = "and ARCHIVE " if settings.archive else ""
    sys.stderr.write(
        f"About to terminate {archive}{count} sessions of {settings.org_id}. Continue? [y/N] "
    )
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


@contextmanager
def progress_for(settings: Settings) -> Iterator[Tally]:
    """Yield the run's tally while a display shows it: bar, JSON beats or nothing."""
    tally = Tally()
    if settings.progress == "off":
        yield tally
        return
    display = _Bar(tally, settings) if _on_terminal(settings) else _Beats(tally, settings)
    display.start()
    try:
        yield tally
    finally:
        display.stop()


def _on_terminal(settings: Settings) -> bool:
    return settings.progress == "on" or (settings.progress == "auto" and sys.stderr.isatty())


def console_for(settings: Settings) -> Console:
    from rich.console import Console  # rich colours nothing when NO_COLOR is set

    return Console(stderr=True, highlight=False, force_terminal=settings.progress == "on" or None)


class _Beats:
    """Without a terminal: a ``run.progress`` event every ``progress_interval`` seconds."""

    def __init__(self, tally: Tally, settings: Settings) -> None:
        self._meter = Meter(tally, settings.rate)
        default = _JSON_INTERVAL if is_json(settings.log_format) else _TEXT_INTERVAL
        self._interval = settings.progress_interval or default
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="progress-beats", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        self._meter.read()  # the first sample, so the first beat has a rate
        while not self._stopped.wait(self._interval):
            log.info("run.progress", **self._meter.read().as_event())


class _Bar:
    """On a terminal: a rich bar on stderr, redrawn by its own thread.

    The bar appears at the first request or settled id, so that a confirmation prompt is
    never drawn over. Meanwhile diagnostics go through the rich console (structlog's
    logger holds the stream it was given, and writing around the live bar garbles it).
    """

    def __init__(self, tally: Tally, settings: Settings) -> None:
        self._tally = tally
        self._settings = settings
        self._meter = Meter(tally, settings.rate)
        self._console = console_for(settings)
        self._progress = _make_progress(self._console)
        self._task: TaskID | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._draw, name="progress-bar", daemon=True)

    def start(self) -> None:
        self._log_to(_ConsoleStream(self._console))
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        if self._task is not None:
            self._update()
            self._progress.stop()
        self._log_to(sys.stderr)

    def _draw(self) -> None:
        while not self._stopped.wait(_TICK):
            if self._task is None:
                if not (self._tally.requests or self._tally.counts):
                    continue
                self._task = self._progress.add_task("terminating", rps="", outcomes="")
                self._update()
                self._progress.start()
            self._update()
            self._progress.refresh()

    def _update(self) -> None:
        assert self._task is not None
        figures = self._meter.read()
        self._progress.update(
            self._task,
            total=figures.expected,
            completed=figures.settled,
            rps=f"{figures.requests_per_s:.1f}",
            outcomes=_outcome_text(figures),
        )

    def _log_to(self, stream: Any) -> None:
        s = self._settings
        configure_logging(level=s.log_level, fmt=s.log_format, stream=stream)


class _ConsoleStream:
    """A text stream that prints whole lines through a rich console (above a live bar)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        from rich.text import Text

        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self._console.is_terminal


def _make_progress(console: Console) -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rps]} req/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[outcomes]}", markup=False),
        console=console,
        auto_refresh=False,
        redirect_stdout=False,  # stdout is for data
    )


def _outcome_text(figures: Figures) -> str:
    parts = [f"{name} {figures.counts[name]}" for name in ORDER if name in figures.counts]
    if figures.rate_limit is not None:
        parts.append(f"rate lowered to {figures.rate_limit:.1f}/s")
    return " · ".join(parts)
