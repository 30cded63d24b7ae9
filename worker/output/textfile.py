"""``run --metrics-file PATH``: the run's figures for Prometheus, in node_exporter's textfile
format, written at every exit of the command (a clean end, failed sessions, an abort, the
API unreachable, an interrupt) so that an alert can read the night.

The figures are gauges of the last run: its start and end (Unix seconds), exit code,
sessions by outcome (the counts of its ``run.finished``, every outcome present, 0 when
none), requests sent and 429s answered, and the end of the last run that exited 0, carried
over from the file already there when this run did not. node_exporter reads ``*.prom`` files
in one directory: the text is written to a temporary file in that same directory, flushed
to disk and renamed over the old one, so a scrape sees the old file or the new one, never
half of one. The file is made ``0644`` whatever the umask (a service's ``UMask=0077``
would hide it from node_exporter, which runs as another user): it holds counts and
times, nothing secret. Imported only when the setting is given (prometheus-client).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import structlog
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from worker.errors import ConfigError, WorkerError
from worker.outcomes import OUTCOMES, RunReport, Tally
from worker.output.report import COUNTED_ONLY

PREFIX = "devin_terminate_run_"
LAST_SUCCESS = PREFIX + "last_success_time_seconds"
_MODE = 0o644
log = structlog.get_logger("worker.output.textfile")


def check_metrics_path(path: Path) -> None:
    """Exit 2 before anything else when the metrics file could never be written."""
    parent = path.parent
    if path.is_dir():
        raise ConfigError(f"--metrics-file {path} is a directory; pass a file name ending .prom")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write the metrics file {path}: {parent} is not a writable directory "
            "(node_exporter's textfile collector reads one, e.g. "
            "/var/lib/node_exporter/textfile_collector)"
        )
    if path.suffix != ".prom":
        log.warning("metrics_file.not_prom", path=str(path), hint="node_exporter reads *.prom")


class RunMetricsFile:
    """``with RunMetricsFile(path, tally) as night: night.report = run(...)``: the file is
    written when the block is left, by a return or an exception (its exit code taken from
    a ``WorkerError``, 130 for KeyboardInterrupt, 1 for anything else), and by ``exit``
    for a process that leaves without unwinding (``os._exit`` on an early SIGTERM)."""

    def __init__(
        self, path: Path, tally: Tally | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.tally = tally or Tally()
        self.report: RunReport | None = None
        self._clock = clock
        self.started = clock()
        self._written = False

    def __enter__(self) -> RunMetricsFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.report is not None and exc is None:
            self.exit(self.report.exit_code)
        else:
            self.exit(_exit_code(exc))

    def exit(self, code: int) -> None:
        """Write the file once, for a run that ends with ``code``; a failure to write is a
        warning (the run's own outcome stands)."""
        if self._written:
            return
        self._written = True
        report = self.report
        counts = report.counts if report is not None else dict(self.tally.counts)
        requests = report.requests if report is not None else self.tally.requests
        ended = self._clock()
        success = ended if code == 0 else last_success(self.path)
        text = render(
            started=self.started,
            ended=ended,
            exit_code=code,
            counts=counts,
            requests=requests,
            throttled=self.tally.throttled,
            last_success=success,
        )
        try:
            write_atomically(self.path, text)
        except OSError as exc:
            log.warning("metrics_file.unwritten", path=str(self.path), error=str(exc))


def _exit_code(exc: BaseException | None) -> int:
    if isinstance(exc, WorkerError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    return 1


def render(
    *,
    started: float,
    ended: float,
    exit_code: int,
    counts: Mapping[str, int],
    requests: int,
    throttled: int,
    last_success: float | None,
) -> bytes:
    """The textfile: one gauge a figure, in a registry of its own (not the global one)."""
    registry = CollectorRegistry(auto_describe=False)

    def gauge(name: str, text: str, value: float) -> None:
        Gauge(PREFIX + name, text, registry=registry).set(value)

    gauge("start_time_seconds", "When the last run started, Unix time.", started)
    gauge("end_time_seconds", "When the last run ended, Unix time.", ended)
    gauge("exit_code", "The exit code of the last run.", exit_code)
    sessions = Gauge(
        PREFIX + "sessions",
        "Sessions of the last run by outcome, as its run.finished counts them.",
        ["outcome"],
        registry=registry,
    )
    for name in (*OUTCOMES, *COUNTED_ONLY):
        sessions.labels(outcome=name).set(counts.get(name, 0))
    gauge("requests", "Requests the last run sent, retries and checks included.", requests)
    gauge("throttled_requests", "Requests of the last run answered 429.", throttled)
    if last_success is not None:
        gauge("last_success_time_seconds", "When the last run that exited 0 ended.", last_success)
    return generate_latest(registry)


def last_success(path: Path) -> float | None:
    """The last success the file already there records; None when it has none (or is not
    a readable metrics file: it is overwritten either way)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:1_000_000]
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS and math.isfinite(sample.value):
                    return float(sample.value)
    except (OSError, ValueError, TypeError, IndexError):
        pass
    return None


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` to a temporary file beside ``path``, flushed, then renamed over it. The
    temporary name does not end in .prom, so node_exporter never reads it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):  # left by a process of the same pid
        os.unlink(temporary)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, _MODE)  # never through a link planted in a shared directory
    try:
        try:
            os.fchmod(fd, _MODE)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
