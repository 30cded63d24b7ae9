"""``work --metrics-port``: what a worker shows from outside, served on its own event loop.

``/metrics`` is Prometheus' text exposition of one `CollectorRegistry` made for this worker
(not the library's global one, so tests and library runs in one process never clash),
whose collector reads the run's live figures at each scrape: the `Tally` (requests by
method and status class as the client counted them, results by outcome as the pipeline
recorded them, retries, 429s, requests in flight), the rate gate (rate granted, limit
found, holds, pauses), the `Lifeline` (Redis errors and reconnects), and the queue (stream
length, pending entries, age of the oldest pending one), read from Redis by the scrape
itself under a short deadline. ``/healthz`` answers while the loop runs; ``/readyz`` is
200 while Redis answers a PING and the worker is not draining, else 503.

An aiohttp route on the worker's loop rather than prometheus-client's
``start_http_server``: that one serves from a thread, which would read the figures while
the loop changes them, and could not ask Redis (an asyncio client) for the queue or
answer ``/readyz``. Imported only when the flag is given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.fleet.connect import Keys
from worker.fleet.lifeline import Lifeline
from worker.outcomes import Tally
from worker.run.pipeline import Pipeline

P = "devin_terminate_"
REDIS_DEADLINE = 2.0  # seconds a scrape or a readiness check waits for Redis
log = structlog.get_logger("worker.fleet.metrics")


@dataclass(slots=True)
class Queue:
    """The queue as the last scrape read it; ``None`` figures: Redis did not answer."""

    redis: Any
    keys: Keys
    group: str
    entries: int | None = None
    pending: int | None = None
    oldest_age: float | None = None
    errors: int = 0  # scrapes and readiness checks that Redis did not answer

    async def refresh(self) -> bool:
        try:
            async with asyncio.timeout(REDIS_DEADLINE):
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.xlen(self.keys.stream)
                    pipe.xpending(self.keys.stream, self.group)
                    pipe.time()
                    length, pending, (sec, usec) = await pipe.execute()
            self.pending = int(pending["pending"])
            oldest = str(pending["min"]) if self.pending else None
            queued = int(oldest.split("-")[0]) / 1000 if oldest else None  # an id's ms
        except Exception:
            self.entries = self.pending = self.oldest_age = None
            self.errors += 1
            return False
        self.entries = int(length)
        self.oldest_age = 0.0 if queued is None else max(0.0, sec + usec / 1e6 - queued)
        return True

    async def reachable(self) -> bool:
        try:
            async with asyncio.timeout(REDIS_DEADLINE):
                return bool(await self.redis.ping())
        except Exception:
            self.errors += 1
            return False


@dataclass(eq=False)  # registered by identity
class Figures(Collector):
    """The worker's live figures, as Prometheus metric families (read at each scrape)."""

    tally: Tally
    pipeline: Pipeline
    lifeline: Lifeline
    queue: Queue
    ready: bool = False

    def collect(self) -> Iterator[Metric]:
        yield from self._run()
        yield from self._rate()
        yield from self._redis()
        yield _gauge("ready", "1 while Redis answers and the worker is not draining.", self.ready)

    def _run(self) -> Iterator[Metric]:
        t = self.tally
        requests = CounterMetricFamily(
            P + "requests",
            "Requests sent to the API, by method and status class (none: no answer).",
            labels=["method", "status_class"],
        )
        for (method, status_class), count in sorted(t.answers.items()):
            requests.add_metric([method, status_class], count)
        yield requests
        results = CounterMetricFamily(
            P + "results",
            "Sessions settled, by outcome (skipped, duplicate too).",
            labels=["outcome"],
        )
        for outcome, count in sorted(t.counts.items()):
            results.add_metric([outcome], count)
        yield results
        yield _counter("throttled_responses", "Answers 429 (Too Many Requests).", t.throttled)
        yield _counter("retries", "Retries scheduled (after a backoff or Retry-After).", t.retries)
        yield _gauge("requests_in_flight", "Requests sent and not answered yet.", t.in_flight)

    def _rate(self) -> Iterator[Metric]:
        gate = self.pipeline.gate
        if gate.rate is not None:
            yield _gauge("rate_granted_requests_per_second", "Rate granted now.", gate.rate)
        if gate.limit is not None:
            yield _gauge(
                "rate_limit_found_requests_per_second", "Rate found at the last cut.", gate.limit
            )
        yield _counter("rate_holds", "Holds: grants waited for a 429 to be measured.", gate.holds)
        yield _counter(
            "rate_pauses", "Pauses: every request waited out a Retry-After.", gate.pauses
        )
        left = max(0.0, gate.paused_until - gate.now())
        yield _gauge("rate_pause_remaining_seconds", "Seconds left in the pause now.", left)

    def _redis(self) -> Iterator[Metric]:
        q = self.queue
        errors = self.lifeline.errors + q.errors
        yield _counter("redis_errors", "Redis calls that failed (connection, timeout).", errors)
        yield _counter("redis_reconnects", "Outages of Redis survived.", self.lifeline.recoveries)
        if q.entries is not None:
            yield _gauge("queue_entries", "Entries in the stream (waiting or pending).", q.entries)
        if q.pending is not None:
            yield _gauge("queue_pending_entries", "Entries delivered, not acknowledged.", q.pending)
        if q.oldest_age is not None:
            text = "Seconds since the oldest pending entry was queued (0: none pending)."
            yield _gauge("queue_oldest_pending_age_seconds", text, q.oldest_age)


def _counter(name: str, text: str, value: float) -> Metric:
    return CounterMetricFamily(P + name, text, value=value)


def _gauge(name: str, text: str, value: float) -> Metric:
    return GaugeMetricFamily(P + name, text, value=value)


def _app(figures: Figures, registry: CollectorRegistry) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        await figures.queue.refresh()
        figures.ready = _is_ready(figures, reachable=figures.queue.entries is not None)
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        reachable = await figures.queue.reachable()
        figures.ready = _is_ready(figures, reachable=reachable)
        if figures.ready:
            return web.Response(text="ready\n")
        why = "draining" if figures.pipeline.draining else "Redis unreachable"
        return web.Response(status=503, text=f"not ready: {why}\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def _is_ready(figures: Figures, *, reachable: bool) -> bool:
    return reachable and not figures.pipeline.draining and not figures.lifeline.lost.is_set()


@contextlib.asynccontextmanager
async def serve_metrics(host: str, port: int, figures: Figures) -> AsyncIterator[int]:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` while the block
    runs; yields the port bound (``port`` 0: any free one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(figures)
    runner = web.AppRunner(_app(figures, registry), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host or None, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        log.info("metrics.serving", host=host or "*", port=bound, paths="/metrics /healthz /readyz")
        yield bound
    finally:
        await runner.cleanup()
