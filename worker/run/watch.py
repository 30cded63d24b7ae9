"""The result log watched between records: a log deleted, renamed, replaced or truncated
while the answers are slow stops the run within `WATCH_S`, not at the next record. (The log
checks itself before each record too: `worker.output.results.ResultLog.check`.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from worker.errors import ResultLogError

WATCH_S = 0.25  # how often the log is looked at between records


@contextlib.asynccontextmanager
async def watching(
    check: Callable[[], None], stop: Callable[[ResultLogError], None]
) -> AsyncIterator[None]:
    """For the ``async with`` block: ``check()`` every `WATCH_S` (the loop's clock); the
    first ``ResultLogError`` it raises goes to ``stop`` and ends the watch."""
    task = asyncio.create_task(_watch(check, stop))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _watch(check: Callable[[], None], stop: Callable[[ResultLogError], None]) -> None:
    while True:
        await asyncio.sleep(WATCH_S)
        try:
            check()
        except ResultLogError as exc:
            stop(exc)
            return
