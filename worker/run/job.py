"""One ``run`` from files or stdin, start to finish: results path check, preflight, lock,
resume scan (refused for a log of another org or API), identity check (``GET /v3/self``),
the pipeline, the result log's first and last records. The CLI calls ``run_job`` and maps its
report (or a ``WorkerError``) to an exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import BinaryIO

import structlog

from worker._version import __version__
from worker.devin.client import DevinClient
from worker.errors import ConfigError, InputError, ResultLogError, WorkerError
from worker.input.intake import threaded, until_input_error
from worker.input.opening import Source, open_sources
from worker.input.sources import read_sources
from worker.outcomes import RunReport, Tally
from worker.output.history import PriorRuns, scan_results
from worker.output.lock import RunLock
from worker.output.results import ResultLog, check_results_path
from worker.run.identity import check_identity
from worker.run.pipeline import Pipeline
from worker.run.preflight import Confirm, preflight, require_credentials, spool_dir
from worker.settings import Settings

log = structlog.get_logger("worker.run.job")


@contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """Until the pipeline takes the signals over: SIGTERM exits 143, like SIGINT's 130,
    even while a FIFO is being opened or stdin spooled. Nothing was sent yet, the lock is
    a ``flock`` the kernel drops and a spool is an unlinked file, so the process leaves
    at once: an exception raised from a signal handler could land in a ``__del__`` and be
    swallowed, and the run would go on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        os._exit(143)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_job(
    settings: Settings,
    inputs: Sequence[str],
    *,
    stdin: BinaryIO | None = None,
    confirm: Confirm | None = None,
    tally: Tally | None = None,
) -> RunReport:
    """The whole ``run`` command. Raises WorkerError subclasses for fatal conditions."""
    tally = tally or Tally()
    check_results_path(settings.results)
    require_credentials(settings)  # before any input is opened (a FIFO would wait)
    with ExitStack() as stack:
        stack.enter_context(_exit_on_sigterm())
        sources = stack.enter_context(
            open_sources(inputs, stdin=stdin, spool_dir=spool_dir(settings))
        )
        tally.expected = preflight(settings, sources, confirm)
        stack.enter_context(RunLock(settings.results, settings.lock))
        prior = _resume_state(settings)
        run_id = uuid.uuid4().hex[:12]
        sink = ResultLog(settings.results, run_id, fresh=not settings.resume)
        stack.callback(sink.close)
        structlog.contextvars.bind_contextvars(run_id=run_id)
        start = _Start(settings, inputs, sink, tally, resumed=len(prior.settled))
        try:
            report = asyncio.run(_run(settings, sources, sink, prior, start))
        except WorkerError as exc:  # e.g. the token refused: a started log still ends
            if start.done:
                elapsed = time.monotonic() - tally.started
                _finish(sink, dict(tally.counts), elapsed, exc.exit_code, interrupted=False)
            raise
        if start.done:  # else interrupted during the identity check: nothing was written
            _finish(
                sink,
                report.counts,
                report.elapsed_s,
                report.exit_code,
                interrupted=report.interrupted,
            )
        return report


class _Start:
    """The pipeline's first step, with the run's client: who am I (``GET /v3/self``), then
    ``run.started``. A run stopped by the identity check leaves no record at all."""

    def __init__(
        self,
        settings: Settings,
        inputs: Sequence[str],
        sink: ResultLog,
        tally: Tally,
        *,
        resumed: int,
    ) -> None:
        self._settings, self._inputs, self._sink = settings, inputs, sink
        self.tally, self._resumed = tally, resumed
        self.done = False

    async def __call__(self, client: DevinClient) -> None:
        s = self._settings
        await check_identity(client, org_id=s.org_id or "", base_url=s.base_url)
        self._sink.started(
            version=__version__,
            org_id=s.org_id,
            base_url=_api_root(s.base_url),
            archive=s.archive,
            dry_run=s.dry_run,
            settings=s.public(),
            inputs=list(self._inputs) or ["-"],
        )
        self.done = True
        log.info(
            "run.started",
            org_id=s.org_id,
            results=str(s.results),
            expected=self.tally.expected,
            archive=s.archive,
            dry_run=s.dry_run,
            resumed_settled=self._resumed,
        )


def _finish(
    sink: ResultLog, counts: dict[str, int], elapsed: float, code: int, *, interrupted: bool
) -> None:
    """``run.finished``, if the disk has room for it (a full one already stopped the run)."""
    broken = sink.broken  # the run already stopped for it and says why: no second line
    try:
        sink.finished(counts=counts, elapsed_s=elapsed, exit_code=code, interrupted=interrupted)
    except ResultLogError as exc:
        if not broken:
            log.warning("results.unfinished", error=str(exc))


async def _run(
    settings: Settings,
    sources: Sequence[Source],
    sink: ResultLog,
    prior: PriorRuns,
    start: _Start,
) -> RunReport:
    pipeline = Pipeline(
        settings,
        sink.result,
        settled=prior.settled,
        tally=start.tally,
        handle_signals=True,
        sent=prior.sent,
        before_send=sink.sending,
    )
    failures: list[InputError] = []
    read = read_sources(sources, column=settings.column, outcomes=settings.outcome)
    items = until_input_error(threaded(read), failures)
    report = await pipeline.run(items, first=start)
    if failures:  # e.g. no column of a piped CSV holds ids: exit 2 once the rest settled
        raise failures[0]
    return report


def _resume_state(settings: Settings) -> PriorRuns:
    if not settings.resume:
        return PriorRuns()
    prior = scan_results(settings.results)
    _check_owner(prior, settings)
    if prior.bad_lines:
        log.warning(
            "results.unreadable_lines",
            path=str(settings.results),
            lines=prior.bad_lines[:20],
            torn_tail=prior.torn_tail,
            hint="a run was killed mid-write; these lines are ignored and their ids retried",
        )
    if prior.settled:
        log.info("run.resuming", settled=len(prior.settled), sent_unanswered=len(prior.sent))
    return prior


def _check_owner(prior: PriorRuns, settings: Settings) -> None:
    """A result log belongs to one org and one API: resuming from another's is refused."""
    api = _api_root(settings.base_url)
    for org, url in sorted(prior.owners, key=str):
        if (org is None or org == settings.org_id) and (url is None or url == api):
            continue
        where = url or "an unrecorded URL"
        raise ConfigError(
            f"the result log {settings.results} belongs to org {org} at {where}, "
            f"not to --org-id {settings.org_id} at {api}; its records cannot be resumed here. "
            "Pass another --results file, or --no-resume to move this log aside."
        )


def _api_root(base_url: str) -> str:
    return base_url.rstrip("/")
