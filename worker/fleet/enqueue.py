"""``enqueue``: validated session ids from files or stdin onto the stream, in batches.

Inputs are read by the same streaming readers as ``run``: every invalid line is reported on
stderr with its ``file:line`` and never reaches the queue; duplicates within the inputs are
enqueued once. Each entry carries the id and where it came from (``id``, ``src``). The
queue's marker (``STREAM:meta``) gets an epoch when it has none and counts what was enqueued,
in the same round trip: a Redis restarted without its data has lost it, and the workers notice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

import structlog

from worker.fleet.connect import Keys
from worker.fleet.lifeline import connect
from worker.fleet.options import FleetOptions
from worker.input.idset import IdSet
from worker.input.intake import threaded
from worker.input.sources import InputItem, check_inputs, read_inputs

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("worker.fleet.enqueue")

_BATCH = 500


@dataclass(slots=True)
class EnqueueReport:
    enqueued: int = 0
    invalid: int = 0
    duplicate: int = 0
    invalid_lines: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.invalid else 0

    def counts(self) -> dict[str, int]:
        return {"enqueued": self.enqueued, "invalid": self.invalid, "duplicate": self.duplicate}


def enqueue(
    options: FleetOptions,
    inputs: Sequence[str],
    *,
    column: str | None = None,
    stdin: BinaryIO | None = None,
    encoding: str | None = None,
) -> EnqueueReport:
    """Put every valid id of ``inputs`` (written in ``encoding``, else detected as `run`
    does) on the stream. Raises WorkerError subclasses."""
    check_inputs(inputs, column=column, encoding=encoding)
    return asyncio.run(_enqueue(options, inputs, column, stdin, encoding))


async def _enqueue(
    options: FleetOptions,
    inputs: Sequence[str],
    column: str | None,
    stdin: BinaryIO | None,
    encoding: str | None,
) -> EnqueueReport:
    redis, lifeline = connect(options.url, options.password_file, options.redis_timeout)
    report = EnqueueReport()
    seen = IdSet()
    batch: list[InputItem] = []
    try:
        items = read_inputs(inputs, column=column, stdin=stdin, encoding=encoding)
        async for item in threaded(items):
            if item.session_id is None:
                _invalid(report, item)
            elif not seen.add(item.session_id):
                report.duplicate += 1
            else:
                batch.append(item)
                if len(batch) >= _BATCH:
                    await lifeline.call("enqueue", lambda b=batch: _push(redis, options.stream, b))  # type: ignore[misc]
                    report.enqueued += len(batch)
                    batch = []
        if batch:
            await lifeline.call("enqueue", lambda: _push(redis, options.stream, batch))
            report.enqueued += len(batch)
    finally:
        await redis.aclose()
    log.info("enqueue.finished", **options.log_fields(), **report.counts())
    return report


def _invalid(report: EnqueueReport, item: InputItem) -> None:
    report.invalid += 1
    log.warning("input.invalid", source=item.source, error=item.error, input=item.raw)


async def _push(redis: Redis, stream: str, batch: list[InputItem]) -> None:
    """One round trip for the batch. A batch re-sent after a lost reply enqueues its ids
    twice; the workers send each id once all the same (settled ids are skipped)."""
    meta = Keys(stream).meta
    async with redis.pipeline(transaction=False) as pipe:
        for item in batch:
            assert item.session_id is not None
            pipe.xadd(stream, {"id": item.session_id, "src": item.source})
        pipe.hsetnx(meta, "epoch", uuid.uuid4().hex)
        pipe.hincrby(meta, "enqueued", len(batch))
        await pipe.execute()
