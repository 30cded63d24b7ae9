"""One ``run`` from files or stdin, start to finish: lock, resume scan, preflight, the
pipeline, the result log's first and last records. The CLI calls ``run_job`` and maps its
report (or a ``WorkerError``) to an exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO

import structlog

from worker._version import __version__
from worker.client import DevinClient
from worker.errors import AuthError, ConfigError, InputError, WorkerError
from worker.idset import IdSet
from worker.input.opening import Source, open_sources
from worker.intake import threaded, until_input_error
from worker.lock import RunLock
from worker.outcomes import Tally
from worker.pipeline import Pipeline, RunReport
from worker.results import ResultLog, scan_results
from worker.settings import TOKEN_ENV, Settings
from worker.sources import check_sources, count_sources, read_sources

log = structlog.get_logger("worker.job")

Confirm = Callable[[int | None, Settings], bool]


def require_credentials(settings: Settings) -> str:
    if settings.token is None:
        raise ConfigError(
            f"no API token: set {TOKEN_ENV} (a cog_... service-user key) or pass --token-file PATH"
        )
    if not settings.org_id:
        raise ConfigError("no organization: pass --org-id org-... or set DEVIN_ORG_ID")
    return settings.token.get_secret_value()


def preflight(
    settings: Settings,
    sources: Sequence[Source],
    confirm: Confirm | None,
) -> int | None:
    """Check inputs, count distinct ids (streaming), enforce --max-sessions, confirm.

    ``sources`` are the inputs opened once (`worker.input.opening.open_sources`). The
    count is known when every input can be read twice: regular files, and stdin or pipes
    that ``run_job`` spooled (it does when --max-sessions is set).
    """
    require_credentials(settings)
    check_sources(sources, column=settings.column)
    total = _count(settings, sources)
    if settings.max_sessions is not None and total is not None and total > settings.max_sessions:
        raise InputError(
            f"the input holds {total} distinct session ids, more than --max-sessions "
            f"{settings.max_sessions}; nothing was sent. Raise the limit or split the input."
        )
    if confirm is not None and not confirm(total, settings):
        raise InputError("not confirmed; nothing was sent")
    return total


def _count(settings: Settings, sources: Sequence[Source]) -> int | None:
    """Distinct ids of the inputs, or None when one of them can be read only once."""
    if not all(source.rereadable for source in sources):
        return None
    return count_sources(sources, column=settings.column, outcomes=settings.outcome)[0]


def _spool_dir(settings: Settings) -> Path | None:
    """Where inputs that can be read once are copied when their ids must be counted."""
    if settings.max_sessions is None:
        return None
    return settings.results.resolve().parent


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


async def check_token(client: DevinClient, settings: Settings) -> None:
    """``GET /v3/self``: fail fast with exit 3 when the token is refused."""
    answer, me = await client.self_info()
    if answer.status in (401, 403):
        raise AuthError(f"the API refused the token: {answer.error}; check {TOKEN_ENV}")
    if me is None:
        log.warning("self.unavailable", error=answer.error)
    elif me.org_id and me.org_id != settings.org_id:
        log.warning("self.other_org", token_org=me.org_id, org_id=settings.org_id)


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
    lock_path = settings.lock or Path(f"{settings.results}.lock")
    require_credentials(settings)  # before any input is opened (a FIFO would wait)
    with ExitStack() as stack:
        stack.enter_context(_exit_on_sigterm())
        sources = stack.enter_context(
            open_sources(inputs, stdin=stdin, spool_dir=_spool_dir(settings))
        )
        tally.expected = preflight(settings, sources, confirm)
        stack.enter_context(RunLock(lock_path))
        settled = _resume_state(settings)
        run_id = uuid.uuid4().hex[:12]
        sink = ResultLog(settings.results, run_id, fresh=not settings.resume)
        stack.callback(sink.close)
        structlog.contextvars.bind_contextvars(run_id=run_id)
        sink.started(
            version=__version__,
            org_id=settings.org_id,
            archive=settings.archive,
            dry_run=settings.dry_run,
            settings=settings.public(),
            inputs=list(inputs) or ["-"],
        )
        log.info(
            "run.started",
            results=str(settings.results),
            expected=tally.expected,
            archive=settings.archive,
            dry_run=settings.dry_run,
            resumed_settled=len(settled),
        )
        try:
            report = asyncio.run(_run(settings, sources, sink, settled, tally))
        except WorkerError as exc:  # e.g. the dry run's token check: the log still ends
            sink.finished(
                counts=dict(tally.counts),
                elapsed_s=time.monotonic() - tally.started,
                exit_code=exc.exit_code,
                interrupted=False,
            )
            raise
        sink.finished(
            counts=report.counts,
            elapsed_s=report.elapsed_s,
            exit_code=report.exit_code,
            interrupted=report.interrupted,
        )
        return report


async def _run(
    settings: Settings,
    sources: Sequence[Source],
    sink: ResultLog,
    settled: IdSet,
    tally: Tally,
) -> RunReport:
    pipeline = Pipeline(settings, sink.result, settled=settled, tally=tally, handle_signals=True)
    failures: list[InputError] = []
    read = read_sources(sources, column=settings.column, outcomes=settings.outcome)
    items = until_input_error(threaded(read), failures)
    first = partial(check_token, settings=settings) if settings.dry_run else None
    report = await pipeline.run(items, first=first)
    if failures:  # e.g. no column of a piped CSV holds ids: exit 2 once the rest settled
        raise failures[0]
    return report


def _resume_state(settings: Settings) -> IdSet:
    if not settings.resume:
        return IdSet()
    prior = scan_results(settings.results)
    if prior.bad_lines:
        log.warning(
            "results.unreadable_lines",
            path=str(settings.results),
            lines=prior.bad_lines[:20],
            torn_tail=prior.torn_tail,
            hint="a run was killed mid-write; these lines are ignored and their ids retried",
        )
    if prior.settled:
        log.info("run.resuming", settled=len(prior.settled))
    return prior.settled
