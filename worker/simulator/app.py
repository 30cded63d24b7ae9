"""The simulated Devin API v3: routes, and the gauntlet every API request runs.

Order per request: bearer token (401) → the token's rate limit (429, answered at once
unless ``slow_429s``) → latency → injected fault → the operation. Anything outside the
spec's operations answers 404 and is listed in the stats as unexpected;
``/_simulator/*`` is the simulator's own surface and is neither authenticated nor
counted.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import SimulatorConfig
from .faults import FaultInjector
from .handlers import SessionHandlers
from .population import Session, make_population
from .ratelimit import RetryAfter, ScheduledLimit
from .responses import Problems, json_response
from .shared import Shared
from .stats import SimulatorStats

Clock = Callable[[], float]
Operation = Callable[[web.Request, str | None], Awaitable[web.Response]]

_SESSIONS = "/v3/organizations/{org_id}/sessions"
_SESSION = _SESSIONS + "/{devin_id}"


class Simulator:
    """The state behind one app: population, counters, limiter and fault injector."""

    def __init__(self, config: SimulatorConfig, clock: Clock, now: Clock) -> None:
        self.config = config
        self.clock = clock
        self.stats = SimulatorStats()
        self.sessions: dict[str, Session] = make_population(config, now())
        self._rng = random.Random(config.seed + 1)
        self.problems = Problems(config.problem_content_type, config.legacy_422)
        self._retry_after = RetryAfter(config.retry_after, now)
        schedule = config.limit_schedule or (
            ((0.0, config.rate_limit),) if config.rate_limit else ()
        )
        self._bucket = (
            ScheduledLimit(schedule, config.burst_for, clock, config.limit_kind)
            if schedule
            else None
        )
        shared = Shared(config, self.stats, self.problems, self._rng, now)
        self.faults = FaultInjector(shared, self._retry_after)
        self.handlers = SessionHandlers(shared, self.sessions)
        self._token = config.token.encode()
        # The header as clients send it, checked first (none if the token would not survive
        # the general check's strip).
        token = config.token
        self._bearer = f"Bearer {token}".encode() if token == token.strip() else None

    async def serve(
        self, request: web.Request, operation: Operation, devin_id: str | None
    ) -> web.StreamResponse:
        """Count the request, run it through the gauntlet, count the answer."""
        stats = self.stats
        stats.record_arrival(request.method, self.clock())
        if devin_id is not None and request.method == "DELETE":
            stats.deletes_by_session[devin_id] += 1
        response = await self._gauntlet(request, operation, devin_id)
        if response is None:
            return web.Response()  # connection already closed: never sent
        stats.record_status(response.status)
        return response

    async def _gauntlet(
        self, request: web.Request, operation: Operation, devin_id: str | None
    ) -> web.Response | None:
        if not self._authorized(request):
            self.stats.auth_failures += 1
            headers = {"WWW-Authenticate": "Bearer"}
            detail = "Invalid or expired API key"
            return self.problems.problem(401, detail, request.path, headers=headers)
        if self._bucket is not None:
            wait = self._bucket.take()
            if wait:
                if self.config.slow_429s:
                    await self._delay()
                headers = self._retry_after.header(wait)
                detail = "Rate limit exceeded — wait and retry"
                return self.problems.problem(429, detail, request.path, headers=headers)
        await self._delay()
        kind = self.faults.pick(devin_id)
        if kind is not None:
            return await self.faults.inject(kind, request, lambda: operation(request, devin_id))
        return await operation(request, devin_id)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        bearer = self._bearer
        if bearer is not None and hmac.compare_digest(
            header.encode(errors="surrogateescape"), bearer
        ):
            return True  # as every client sends it; else the scheme's case and spaces vary
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._token
        )

    async def _delay(self) -> None:
        config = self.config
        delay_ms = config.latency_ms
        if config.latency_jitter_ms:
            delay_ms += self._rng.uniform(0.0, config.latency_jitter_ms)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000.0)

    async def unexpected(self, request: web.Request) -> web.StreamResponse:
        self.stats.record_arrival(request.method, self.clock())
        self.stats.record_unexpected(request.method, request.path)
        self.stats.record_status(404)
        detail = f"No such operation: {request.method} {request.path}"
        return self.problems.problem(404, detail, request.path)


SIMULATOR_KEY = web.AppKey("devin_simulator", Simulator)


def make_app(
    config: SimulatorConfig, *, clock: Clock = time.monotonic, now: Clock = time.time
) -> web.Application:
    """The simulator as an aiohttp application; its state is ``app[SIMULATOR_KEY]``.

    ``clock`` (monotonic seconds) drives the rate limit and the stats' times; ``now``
    (unix seconds) dates the population, ``updated_at`` and HTTP-date Retry-Afters.
    """
    sim = Simulator(config, clock, now)
    app = web.Application()
    app[SIMULATOR_KEY] = sim
    _add_api_routes(app, sim)
    app.router.add_route("GET", "/_simulator/stats", _stats_handler)
    app.router.add_route("POST", "/_simulator/reset-stats", _reset_stats_handler)
    app.router.add_route("*", "/{tail:.*}", sim.unexpected)
    app.on_shutdown.append(_wake_hanging)
    return app


def _add_api_routes(app: web.Application, sim: Simulator) -> None:
    h = sim.handlers

    def route(operation: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await sim.serve(request, operation, request.match_info.get("devin_id"))

        return handle

    app.router.add_route("DELETE", _SESSION, route(h.terminate))
    app.router.add_route("GET", _SESSION, route(h.get_session))
    app.router.add_route("GET", _SESSIONS, route(h.list_sessions))
    app.router.add_route("POST", _SESSION + "/archive", route(h.archive))
    app.router.add_route("GET", "/v3/self", route(h.get_self))


async def _stats_handler(request: web.Request) -> web.Response:
    return json_response(request.app[SIMULATOR_KEY].stats.snapshot())


async def _reset_stats_handler(request: web.Request) -> web.Response:
    request.app[SIMULATOR_KEY].stats.reset()
    return json_response({"reset": True})


async def _wake_hanging(app: web.Application) -> None:
    app[SIMULATOR_KEY].faults.stopping.set()
