"""Injected faults: which request gets one, and what the client then sees.

A session id's script (``faults_by_id``) is consumed first, one kind per request that
names the id; otherwise each request draws a random fault with ``fault_rate``. What the
kinds do:

- ``500``/``503``: a ProblemDetail (a transient blip: no Retry-After); ``502``/``504``: a
  proxy's HTML/text page; ``409``/``404``: the API's ProblemDetail (scripted only).
- ``503-retry-after`` / ``503-retry-date``: an overloaded service saying when to come back
  (``fault_retry_after`` seconds, as seconds or as an HTTP-date); ``429`` (Retry-After as
  the ``retry_after`` mode says), ``429-no-retry-after``, ``429-retry-date``: a throttle
  that the token bucket did not decide.
- ``malformed``: the request is carried out, but the 200 body is cut in half;
  ``garbage``: carried out, and the 200's body is not JSON at all.
- ``reset``: the connection is closed without an answer (aiohttp clients see
  ``ServerDisconnectedError``, after silently re-sending an idempotent request once).
- ``timeout``: the answer is held ``timeout_hang_s`` (cut short when the server stops);
  it is carried out only if the client is still connected by then.

For ``reset`` and ``timeout`` on DELETE/POST, with ``ghost_success_rate`` the change
is applied before the failure: the "timed-out DELETE that did succeed" of real life.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from .ratelimit import RetryAfter
from .responses import gateway_response
from .shared import Shared

Call = Callable[[], Awaitable[web.Response]]
_MUTATING = frozenset({"DELETE", "POST"})
_GARBAGE = b"\x00\xff<html>upstream sent an invalid response</html>\x1b{"
_DETAILS = {
    409: "Session is in a state that does not allow this operation",
    404: "Session not found",
    500: "Internal server error",
    503: "Service temporarily unavailable, try again later",
    429: "Rate limit exceeded — wait and retry",
}


class FaultInjector:
    """Chooses faults per request and plays them out; ``None`` means the connection dropped."""

    def __init__(self, shared: Shared, retry_after: RetryAfter) -> None:
        self._shared = shared
        self._retry_after = retry_after
        self._scripts = {sid: deque(kinds) for sid, kinds in shared.config.faults_by_id.items()}
        self.stopping = asyncio.Event()

    def pick(self, devin_id: str | None) -> str | None:
        """The fault for this request, if any (consumes one step of the id's script)."""
        if devin_id is not None:
            script = self._scripts.get(devin_id)
            if script:
                return script.popleft()
        if self._shared.config.fault_mix:
            draw = self._shared.rng.random()
            for kind, share in self._shared.config.fault_mix.items():
                draw -= share
                if draw < 0:
                    return kind
        rate = self._shared.config.fault_rate
        if rate and self._shared.rng.random() < rate:
            return self._shared.rng.choice(self._shared.config.fault_kinds)
        return None

    async def inject(self, kind: str, request: web.Request, call: Call) -> web.Response | None:
        self._shared.stats.faults_injected[kind] += 1
        if kind == "reset":
            await self._reset(request, call)
            return None
        if kind == "timeout":
            return await self._hang(request, call)
        if kind == "malformed":
            return _truncated(await call())
        if kind == "garbage":
            await call()
            return web.Response(body=_GARBAGE, status=200, content_type="application/json")
        if kind in ("502", "504"):
            return gateway_response(int(kind))
        status = int(kind[:3])
        headers = self._signal_headers(kind)
        return self._shared.problems.problem(
            status, _DETAILS[status], request.path, headers=headers
        )

    def _signal_headers(self, kind: str) -> dict[str, str] | None:
        wait = self._shared.config.fault_retry_after
        if kind == "429":
            return self._retry_after.header(1.0)
        if kind == "503-retry-after":
            return self._retry_after.render("seconds", wait)
        if kind.endswith("-retry-date"):
            return self._retry_after.render("http-date", wait)
        return None

    def _ghost(self, request: web.Request) -> bool:
        if request.method not in _MUTATING:
            return False
        return self._shared.rng.random() < self._shared.config.ghost_success_rate

    async def _reset(self, request: web.Request, call: Call) -> None:
        if self._ghost(request):
            await call()
            self._shared.stats.ghost_successes += 1
        drop(request)

    async def _hang(self, request: web.Request, call: Call) -> web.Response | None:
        response = None
        if self._ghost(request):
            response = await call()
            self._shared.stats.ghost_successes += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), self._shared.config.timeout_hang_s)
        if not _connected(request):
            return None
        return response if response is not None else await call()


def drop(request: web.Request) -> None:
    """Close the connection without answering."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _truncated(response: web.Response) -> web.Response:
    body = response.body if isinstance(response.body, bytes) else b"{}"
    cut = body[: max(1, len(body) // 2)]
    return web.Response(body=cut, status=200, content_type="application/json")
