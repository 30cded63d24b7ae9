"""One ``run`` from files or stdin, start to finish: results path check, credentials,
inputs opened (and counted first for --max-sessions or a confirmation, else while the run
goes), then the run itself (`worker.run.recorded`: lock, resume scan, identity check,
pipeline, the result log's first and last records). The CLI calls ``run_job`` and maps its
report (or a ``WorkerError``) to an exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import BinaryIO

from worker.errors import InputError
from worker.input.intake import threaded, until_input_error
from worker.input.opening import Source, open_sources
from worker.input.sources import read_entries
from worker.outcomes import RunReport, Tally
from worker.output.logpath import check_results_path
from worker.run.preflight import (
    Confirm,
    count_meanwhile,
    preflight,
    require_credentials,
    spooling,
)
from worker.run.recorded import RecordedRun
from worker.settings import Settings


@contextmanager
def _exit_on_sigterm(on_exit: Callable[[int], None] | None) -> Iterator[None]:
    """Until the pipeline takes the signals over: SIGTERM exits 143 (SIGHUP 129), like SIGINT's 130,
    even while a FIFO is being opened or stdin spooled. Nothing was sent yet, the lock is
    a ``flock`` the kernel drops and a spool is an unlinked file, so the process leaves
    at once: an exception raised from a signal handler could land in a ``__del__`` and be
    swallowed, and the run would go on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: object) -> None:
        code = 129 if signum == signal.SIGHUP else 143
        if on_exit is not None:
            on_exit(code)
        os._exit(code)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_job(
    settings: Settings,
    inputs: Sequence[str],
    *,
    stdin: BinaryIO | None = None,
    confirm: Confirm | None = None,
    tally: Tally | None = None,
    on_exit: Callable[[int], None] | None = None,
) -> RunReport:
    """The whole ``run`` command. Raises WorkerError subclasses for fatal conditions.
    ``on_exit(code)`` is called when the process leaves without unwinding (an early
    SIGTERM)."""
    tally = tally or Tally()
    check_results_path(settings.results)
    require_credentials(settings)  # before any input is opened (a FIFO would wait)
    with ExitStack() as stack:
        stack.enter_context(_exit_on_sigterm(on_exit))
        sources = stack.enter_context(
            open_sources(inputs, stdin=stdin, spool=spooling(settings), encoding=settings.encoding)
        )
        tally.expected = preflight(settings, sources, confirm)
        counted = tally.expected is not None  # else counted while the first requests go
        ended = threading.Event()
        stack.callback(ended.set)
        run = RecordedRun(
            settings,
            inputs=list(inputs) or ["-"],
            tally=tally,
            handle_signals=True,
            keep_run_id=True,
            on_started=None
            if counted
            else partial(count_meanwhile, settings, sources, tally, ended),
        )
        stack.enter_context(run)
        return asyncio.run(_run(run, sources))


async def _run(run: RecordedRun, sources: Sequence[Source]) -> RunReport:
    settings = run.settings
    failures: list[InputError] = []
    read = read_entries(sources, column=settings.column, outcomes=settings.outcome)
    return await run.run(until_input_error(threaded(read), failures), failures=failures)
