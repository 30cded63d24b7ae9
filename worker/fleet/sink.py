"""Where a worker's results go: its JSONL log first, then Redis (settle, results, XACK).

`FleetSink` is the pipeline's sink. It writes each result to the worker's own result log
(one ``os.write`` on an ``O_APPEND`` file, as ``run`` does) before anything else, then hands
it to one background task that runs the ``SETTLE`` script, one call per batch, through the
lifeline: the entry is acknowledged only in the same script that records the result for the
fleet. A ``cancelled`` result (shutdown before an answer) is logged and left pending, so
another delivery finishes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from worker.fleet import scripts
from worker.outcomes import FINAL_OUTCOMES, SessionResult
from worker.output.results import ResultLog

if TYPE_CHECKING:
    from worker.fleet.reader import StreamReader

RESULTS_MAXLEN = 1_000_000
_BATCH = 256
# results settled in one call: those within this long of the first (at 250/s, about 100: the
# script's ten commands inside Redis come to a tenth of one per result)
_WINDOW = 0.4
_REDIS_ERRORS = tuple(
    f"internal error: {name}" for name in ("RedisUnavailable", "RedisRefused", "QueueLost")
)


class FleetSink:
    """Settles what ``reader`` delivered: its entries in flight, on its connection and queue,
    in its group and under its consumer name."""

    def __init__(self, log: ResultLog, reader: StreamReader) -> None:
        self.settled_first = 0  # final results this worker was first to record
        self._log = log
        self._reader = reader
        self._queue: asyncio.Queue[tuple[SessionResult, list[str]]] = asyncio.Queue()

    def __call__(self, result: SessionResult) -> None:
        if self._reader.lifeline.lost.is_set() and (result.error or "").startswith(
            _REDIS_ERRORS
        ):  # not a failure of the session: Redis went away while it waited for the limiter
            result = replace(result, outcome="cancelled", error="Redis unavailable; not sent")
        self._log.result(result)
        if result.session_id is None or result.outcome == "cancelled":
            return  # its entry stays pending: delivered again, to us or another worker
        entries = self._reader.inflight.pop(result.session_id, [])
        if entries:
            self._reader.awaiting.add(result.session_id)
            self._queue.put_nowait((result, entries))

    async def run(self) -> None:
        """Settle results as they come, a batch per call: what arrived within ``_WINDOW``
        of the first (one Redis command for many results); runs until cancelled."""
        while True:
            batch = [await self._queue.get()]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_WINDOW):
                    while len(batch) < _BATCH:
                        batch.append(await self._queue.get())
            await self._reader.lifeline.call("settle", lambda b=batch: self._send(b))  # type: ignore[misc]
            for result, _ in batch:
                self._reader.awaiting.discard(result.session_id or "")
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every result handed over so far is settled in Redis."""
        await self._queue.join()

    async def _send(self, batch: list[tuple[SessionResult, list[str]]]) -> None:
        reader = self._reader
        queue, options = reader.keys, reader.options
        keys = [queue.settled, queue.claims, queue.results, queue.stream, queue.meta]
        args: list[str | int] = [
            options.group,
            options.consumer,
            reader.lease.epoch,
            RESULTS_MAXLEN,
        ]
        for result, entries in batch:
            final = "1" if result.outcome in FINAL_OUTCOMES else "0"
            record = _record(result, options.consumer)
            args += [result.session_id or "", result.outcome, final, record, len(entries)]
            args += entries
        self.settled_first += int(await scripts.SETTLE_LUA(reader.redis, keys, args))


def _record(result: SessionResult, consumer: str) -> str:
    return orjson.dumps(
        {
            "session_id": result.session_id,
            "outcome": result.outcome,
            "archived": result.archived,
            "status": result.status,
            "http_status": result.http_status,
            "attempts": result.attempts,
            "error": result.error,
            "source": result.source,
            "worker": consumer,
        }
    ).decode()
