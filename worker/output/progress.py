"""What an operator sees while a run goes: a bar on a terminal, progress lines otherwise.

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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

from worker.outcomes import OUTCOMES, Tally
from worker.output.logs import configure_logging, is_json
from worker.output.meter import Figures, Meter
from worker.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


log = structlog.get_logger("worker.output.progress")

_TICK = 0.1  # seconds between redraws of the bar
ORDER = (*OUTCOMES, "skipped", "duplicate", "deferred")
_TEXT_INTERVAL = 300.0  # seconds between plain-text progress lines, unless set
_JSON_INTERVAL = 30.0


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
                # no total until the count is made (rich would show 100)
                self._task = self._progress.add_task("terminating", total=None, rps="", outcomes="")
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
