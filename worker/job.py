"""One ``run`` from files or stdin, start to finish: lock, resume scan, preflight, the
pipeline, the result log's first and last records. The CLI calls ``run_job`` and maps its
report (or a ``WorkerError``) to an exit code."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import BinaryIO

import structlog

from worker._version import __version__
from worker.client import DevinClient
from worker.errors import AuthError, ConfigError, InputError, WorkerError
from worker.idset import IdSet
from worker.intake import threaded
from worker.lock import RunLock
from worker.outcomes import Tally
from worker.pipeline import Pipeline, RunReport
from worker.results import ResultLog, scan_results
from worker.settings import TOKEN_ENV, Settings
from worker.sources import check_inputs, count_distinct_ids, read_inputs

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
    inputs: Sequence[str],
    confirm: Confirm | None,
    stdin: BinaryIO | None = None,
) -> int | None:
    """Check inputs, count distinct ids (streaming), enforce --max-sessions, confirm.

    The count is known for file inputs; for stdin only when ``stdin`` is a seekable spool
    (``run_job`` spools stdin to an unlinked temporary file when --max-sessions is set).
    """
    require_credentials(settings)
    check_inputs(inputs, column=settings.column)
    total = _count(settings, inputs, stdin)
    if settings.max_sessions is not None and total is not None and total > settings.max_sessions:
        raise InputError(
            f"the input holds {total} distinct session ids, more than --max-sessions "
            f"{settings.max_sessions}; nothing was sent. Raise the limit or split the input."
        )
    if confirm is not None and not confirm(total, settings):
        raise InputError("not confirmed; nothing was sent")
    return total


def _count(settings: Settings, inputs: Sequence[str], stdin: BinaryIO | None) -> int | None:
    files = [name for name in inputs if name != "-"]
    if files and len(files) == len(inputs):
        return count_distinct_ids(files, column=settings.column)[0]
    if stdin is None or not stdin.seekable():
        return None
    seen = IdSet()
    for item in read_inputs(inputs, column=settings.column, stdin=stdin):
        if item.session_id is not None:
            seen.add(item.session_id)
    stdin.seek(0)
    return len(seen)


def _spool(stdin: BinaryIO | None, directory: Path) -> BinaryIO:
    """Copy stdin to an unlinked 0600 temporary file, so that it can be counted first."""
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by run_job's ExitStack
    shutil.copyfileobj(stdin if stdin is not None else sys.stdin.buffer, spool)
    spool.seek(0)
    return spool


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
    with ExitStack() as stack:
        if settings.max_sessions is not None and (not inputs or "-" in inputs):
            stdin = stack.enter_context(_spool(stdin, settings.results.resolve().parent))
        tally.expected = preflight(settings, inputs, confirm, stdin)
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
            report = asyncio.run(_run(settings, inputs, stdin, sink, settled, tally))
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
    inputs: Sequence[str],
    stdin: BinaryIO | None,
    sink: ResultLog,
    settled: IdSet,
    tally: Tally,
) -> RunReport:
    pipeline = Pipeline(settings, sink.result, settled=settled, tally=tally, handle_signals=True)
    items = threaded(read_inputs(inputs, column=settings.column, stdin=stdin))
    first = partial(check_token, settings=settings) if settings.dry_run else None
    return await pipeline.run(items, first=first)


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
