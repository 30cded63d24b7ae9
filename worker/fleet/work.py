"""``work``: one worker of the fleet, start to finish.

Wires the parts by composition around the ordinary `Pipeline`: the stream reader is its
input, `FleetSink` its sink (the worker's JSONL log, then settle + XACK in Redis), and
`FleetGate` its rate gate (the shared org-wide limiter over the local pacing). The pipeline
keeps its own behaviour: SIGINT/SIGTERM stop intake and drain requests in flight, and every
result is recorded. Exit codes as ``run``; 3 when Redis stays away past ``--redis-timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import structlog

from worker.devin.client import DevinClient
from worker.errors import ConfigError
from worker.fleet.connect import Keys, limiter_key, mask_url, socket_timeout_for
from worker.fleet.gate import FleetGate
from worker.fleet.lease import ReadOptions
from worker.fleet.lifeline import Lifeline, RedisRefused, connect
from worker.fleet.limiter import SharedLimiter
from worker.fleet.options import FleetOptions
from worker.fleet.reader import StreamReader
from worker.fleet.sink import FleetSink
from worker.input.idset import IdSet, Visit
from worker.outcomes import RunReport, Tally
from worker.output.results import ResultLog
from worker.run.identity import check_identity
from worker.run.lifecycle import LogLife
from worker.run.pipeline import ClientCheck, Pipeline
from worker.run.preflight import require_credentials
from worker.run.watch import watching
from worker.settings import Settings

log = structlog.get_logger("worker.fleet.work")


class _EveryDelivery(IdSet):
    """The reader dedupes (an id delivered again must reach the sink, to be acknowledged)."""

    def visit(self, session_id: str) -> Visit:
        return Visit.NEW


def run_worker(settings: Settings, options: FleetOptions, tally: Tally | None = None) -> RunReport:
    """The whole ``work`` command. Raises WorkerError subclasses for fatal conditions."""
    require_credentials(settings)
    if settings.dry_run:
        raise ConfigError(
            "work has no dry run: it would take the ids off the queue. Preview them with "
            "`devin-terminate run --dry-run` on the same input instead."
        )
    tally = tally or Tally()
    run_id = uuid.uuid4().hex[:12]
    # the log's lifecycle, as for run and compact: its locks, the log, run.started/finished
    with LogLife(settings.results, settings.lock, run_id=run_id, write=True) as life:
        assert life.sink is not None
        structlog.contextvars.bind_contextvars(run_id=run_id)
        life.started(settings, inputs=[f"{mask_url(options.url)} {options.stream}"])
        report: RunReport | None = None
        try:
            report = asyncio.run(_work(settings, options, life.sink, tally))
        finally:
            life.finished(
                report.counts if report else dict(tally.counts),
                report.elapsed_s if report else 0.0,
                report.exit_code if report else 3,
                interrupted=report.interrupted if report else False,
            )
        return report


async def _work(
    settings: Settings, options: FleetOptions, sink_log: ResultLog, tally: Tally
) -> RunReport:
    redis, lifeline = connect(options.url, options.password_file, options.redis_timeout)
    read = ReadOptions(
        group=options.group,
        consumer=options.consumer,
        # one read (and one BEGIN script) for 64 ids at least: their Redis commands are
        # a constant per read, so a small read costs more per id
        batch=64 if settings.concurrency == "auto" else max(64, settings.concurrency * 4),
        # a blocking read returns well before the socket times out (redis-py#2807)
        block_ms=round(min(1000.0, socket_timeout_for(options.redis_timeout) * 500)),
        claim_idle_ms=round(options.claim_idle * 1000),
        until_empty=options.until_empty,
    )
    reader = StreamReader(redis, lifeline, Keys(options.stream), read, tally)
    try:
        await check_server(redis, lifeline)
        await reader.open()
        gate = _gate(settings, options, redis, lifeline)
        sink = FleetSink(sink_log, reader)
        log.info(
            "work.started",
            **options.log_fields(),
            group=options.group,
            consumer=options.consumer,
            org_rate=gate.shared.rate,
        )
        pipeline = Pipeline(
            settings,
            sink,
            settled=_EveryDelivery(),
            tally=tally,
            handle_signals=True,
            gate=gate,
            sent=reader.uncertain,
        )

        # who the token is, before any entry is touched: a refused token or another org stops
        async def first(client: DevinClient) -> None:
            await check_identity(client, org_id=settings.org_id or "", base_url=settings.base_url)

        async with (
            _watched(options, pipeline, tally, lifeline, redis),
            watching(sink_log.check, pipeline.log_failed),
        ):
            report = await _supervise(pipeline, reader, sink, lifeline, first)
        log.info(
            "work.finished",
            requests=tally.requests,
            redis_round_trips=lifeline.round_trips,
            limiter_round_trips=gate.shared.round_trips,
        )
        return report
    finally:
        await reader.close()
        with contextlib.suppress(Exception):
            await redis.aclose()


def _watched(
    options: FleetOptions, pipeline: Pipeline, tally: Tally, lifeline: Lifeline, redis: object
) -> contextlib.AbstractAsyncContextManager[object]:
    """``--metrics-port``: the metrics and health server while the worker runs."""
    if options.metrics is None:
        return contextlib.nullcontext()
    from worker.fleet.metrics import Figures, Queue, serve_metrics

    queue = Queue(redis, Keys(options.stream), options.group)
    host, port = options.metrics
    return serve_metrics(host, port, Figures(tally, pipeline, lifeline, queue))


def _gate(
    settings: Settings, options: FleetOptions, redis: object, lifeline: Lifeline
) -> FleetGate:
    """The shared limit at ``--org-rate`` over this worker's controller (the fleet's, kept
    in Redis; its own when ``--rate`` is under ``--org-rate``), whose ceiling is ``--rate``
    when given, else the org's rate (the default --rate of one process,
    20/s, would hold a worker far below the org's budget)."""
    assert settings.org_id is not None
    org_rate = options.org_rate or settings.rate or 1000.0
    shared = SharedLimiter(
        redis,  # type: ignore[arg-type]
        lifeline,
        limiter_key(settings.org_id, settings.base_url),
        org_rate,
        burst=settings.burst or max(1, round(org_rate / 20)),
    )
    explicit = settings.given("rate") or not options.org_rate
    ceiling = min(settings.rate, org_rate) if explicit and settings.rate else org_rate
    return FleetGate(
        shared,
        ceiling,
        adaptive=settings.adaptive,
        shared_control=ceiling >= org_rate,  # else this worker's own --rate, under the fleet's
        burst=settings.burst,
        max_pause=settings.retry_after_max,
        on_change=_rate_changed,
    )


def _rate_changed(old: float, new: float, reason: str) -> None:
    log.info("rate.changed", old=round(old, 2), new=round(new, 2), reason=reason)


async def _supervise(
    pipeline: Pipeline,
    reader: StreamReader,
    sink: FleetSink,
    lifeline: Lifeline,
    first: ClientCheck,
) -> RunReport:
    """Run the pipeline, the settling and the keep-alive tasks; stop everything when Redis
    is lost or a task fails. After a signal, settling waits ``_SETTLE_AFTER_SIGNAL`` at most
    (a hung Redis must not hold a drained worker): what is left stays pending."""
    settling = asyncio.create_task(sink.run())
    alive = asyncio.create_task(reader.keep_alive())
    running = asyncio.create_task(pipeline.run(reader.items(), first=first))
    lost = asyncio.create_task(lifeline.lost.wait())
    helpers = {lost, settling, alive}
    try:
        await asyncio.wait({running, *helpers}, return_when=asyncio.FIRST_COMPLETED)
        _raise_from(lifeline, helpers)
        report = running.result()
        flushed = asyncio.create_task(sink.flush())
        timeout = _SETTLE_AFTER_SIGNAL if report.interrupted else None
        await asyncio.wait({flushed, *helpers}, timeout=timeout, return_when="FIRST_COMPLETED")
        flushed.cancel()
        _raise_from(lifeline, helpers)
        return report
    finally:
        await _cancel({running, *helpers})


async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again any that swallowed it (a
    cancellation that lands inside redis-py can be lost: the keep-alive then slept on)."""
    while pending := {task for task in tasks if not task.done()}:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.1)


_SETTLE_AFTER_SIGNAL = 1.5


def _raise_from(lifeline: Lifeline, helpers: set[asyncio.Task[Any]]) -> None:
    """Raise what stopped a helper: the lifeline's error, or a Redis error no retry mends."""
    if lifeline.lost.is_set():
        raise lifeline.error()
    for task in helpers:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def check_server(redis: Any, lifeline: Lifeline) -> None:
    """Redis 6.2 or later (XAUTOCLAIM), or Valkey: else `RedisRefused`, before anything."""
    info = await lifeline.call("server version", lambda: redis.info("server"))
    version = str(info.get("redis_version", "0"))
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < (6, 2):
        raise RedisRefused(
            f"Redis at {lifeline.url} is version {version}; the fleet needs Redis 6.2 or "
            "later (XAUTOCLAIM), or Valkey 7.2 or later"
        )
