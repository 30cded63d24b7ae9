"""A hostile Devin API on loopback: answers exactly what a test scripts, nothing faithful.

``Hostile`` maps a method (``DELETE``, ``GET``, ``POST``) to a script of ``Reply`` values
consumed one per request, the last one repeating forever. A reply is a status, a JSON or
raw body, headers, or a streamed body of ``huge`` bytes. Every request is counted in
``requests`` as (method, path and query), so a test can say how many of each were sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

ORG = "org-hostile"
TOKEN = "cog_hostile_token_7d1e"
_CHUNK = b"x" * 65536


@dataclass(frozen=True)
class Reply:
    status: int = 200
    json: Any = None
    raw: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    huge: int = 0  # stream this many bytes as the body (no Content-Length)
    declared: bool = False  # with ``huge``: send a Content-Length too


def session(sid: str, status: str = "exit", archived: bool = False) -> dict[str, Any]:
    return {"session_id": sid, "status": status, "is_archived": archived, "org_id": ORG}


def ok(sid: str, status: str = "exit", archived: bool = False) -> Reply:
    return Reply(200, session(sid, status, archived))


def problem(status: int, detail: str = "nope", **headers: str) -> Reply:
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail}
    return Reply(status, body, headers=headers)


class Hostile:
    def __init__(self, script: Mapping[str, Sequence[Reply]]) -> None:
        self._script = {method: list(replies) for method, replies in script.items()}
        self.requests: list[tuple[str, str]] = []
        self.streamed = 0  # body bytes of ``huge`` replies actually written

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.requests if m == method)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        if request.path == "/v3/self":  # whoever asks who we are gets a plain answer
            return web.json_response(
                {"principal_type": "service_user", "service_user_id": "su-1",
                 "service_user_name": "hostile", "org_id": ORG}
            )  # fmt: skip
        replies = self._script.get(request.method) or [Reply(404, {"detail": "no script"})]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.huge:
            return await self._stream(request, reply)
        if reply.raw is not None:
            body = reply.raw
        else:
            body = orjson.dumps(reply.json) if reply.json is not None else b""
        return web.Response(
            status=reply.status,
            body=body,
            headers={"Content-Type": "application/json", **reply.headers},
        )

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
        if reply.declared:
            response.content_length = reply.huge
        await response.prepare(request)
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < reply.huge:
                await response.write(_CHUNK)
                sent += len(_CHUNK)
                self.streamed += len(_CHUNK)
        return response


@contextlib.asynccontextmanager
async def serving(hostile: Hostile) -> AsyncIterator[str]:
    """Serve ``hostile`` on a free loopback port; yields the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hostile.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def pause_gate(gate: Any, seconds: float) -> None:
    """Pause every worker at ``gate`` for ``seconds``: a wave of 429s, as the gate sees one
    (an isolated 429 only paces its own retry), one in ten accepted (a wave of nothing but
    429s is probed one request at a time instead: ``worker.run.spent``)."""
    loop, control = asyncio.get_running_loop(), gate._control
    for i in range(100):
        sent = gate.now()
        control.granted(sent)  # as the pump grants a request: then its answer
        if i % 10 == 1:
            gate.accepted(sent)
        else:
            gate.throttled(seconds, sent)
        if gate.paused_until > loop.time():
            return
    raise AssertionError("the gate did not pause after a wave of 429s")


@dataclass
class FakeClock:
    """A clock and a sleep that advances it at once: waits cost no real time."""

    now: float = 1000.0
    waits: list[float] = field(default_factory=list)  # every sleep asked for, in order

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def fake_policy(clock: FakeClock, **kw: object) -> Any:
    """A ``RetryPolicy`` on ``clock`` with zero backoff and 4 attempts; ``kw`` overrides."""
    from worker.run.backoff import Backoff
    from worker.run.retry import RetryPolicy, ThrottleBreaker

    values: dict[str, object] = {
        "max_attempts": 4,
        "session_timeout": 120.0,
        "request_timeout": 5.0,
        "backoff": Backoff(base=0.0, retry_after_max=120.0),
        "throttle": ThrottleBreaker(clock=clock),
        "clock": clock,
        "sleep": clock.sleep,
    }
    values.update(kw)
    return RetryPolicy(**values)  # type: ignore[arg-type]
