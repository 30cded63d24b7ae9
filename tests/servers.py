"""In-process servers on loopback for the synchronous job functions: an aiohttp app served
from a background thread's event loop (``run_job`` runs its own loop with ``asyncio.run``).
Also a hostile API that echoes the ``Authorization`` header back in its error bodies."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web

from worker.settings import Settings
from worker.simulator import SimulatorConfig
from worker.simulator.app import SIMULATOR_KEY, Simulator, make_app

TOKEN = "cog_live_token_8c1f2e9d"
ORG = "org-safety"


@dataclass
class Served:
    base_url: str
    app: web.Application
    deletes: Counter[str] = field(default_factory=Counter)

    @property
    def sim(self) -> Simulator:
        return self.app[SIMULATOR_KEY]


@contextlib.contextmanager
def serve(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> Iterator[Served]:
    """Serve ``app`` on 127.0.0.1 from a daemon thread for the ``with`` block (over
    HTTPS with ``ssl_context``)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    ready.wait(10)
    try:
        scheme = "https" if ssl_context is not None else "http"
        yield Served(f"{scheme}://127.0.0.1:{holder['port']}", app)
    finally:
        runner = holder["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def simulator_app(**config: object) -> web.Application:
    options: dict[str, object] = {"token": TOKEN, "org_id": ORG, "sessions": 40, **config}
    return make_app(SimulatorConfig(**options))  # type: ignore[arg-type]


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings(base_url: str, results: object, **extra: object) -> Settings:
    values: dict[str, object] = {
        "org_id": ORG,
        "token": TOKEN,
        "base_url": base_url,
        "results": results,
        "rate": 0,
        "backoff_base": 0,
        "retry_after_max": 0,
        "log_format": "json",
        "progress": "off",
        **extra,
    }
    return Settings(**values)


# The hostile API: each session id names the answer its DELETE gets, e.g. devin-s403-json.
ECHO_STATUSES = (400, 401, 403, 404, 409, 422, 500)


def echo_ids() -> list[str]:
    return [f"devin-s{status}-{kind}" for status in ECHO_STATUSES for kind in ("json", "text")]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _whoami(request: web.Request) -> web.Response:
    return web.json_response({"principal_type": "service_user", "org_id": ORG})


def echo_app(whoami: Handler = _whoami) -> web.Application:
    """An API whose error bodies repeat the Authorization header (JSON or text)."""

    async def answer(request: web.Request) -> web.Response:
        devin_id = request.match_info["devin_id"]
        _, code, kind = devin_id.split("-")
        status = int(code[1:])
        if status == 500:  # later than the 401 that halts the run: its retry is never sent
            await asyncio.sleep(0.1)
        header = request.headers.get("Authorization", "")
        if kind == "json":
            detail = f"bad request; you sent Authorization: {header}"
            return web.json_response(
                {"title": "error", "status": status, "detail": detail, "echo": header},
                status=status,
                content_type="application/problem+json",
            )
        return web.Response(status=status, text=f"Authorization: {header}\nheaders={header!r}")

    app = web.Application()
    app.router.add_get("/v3/self", whoami)
    app.router.add_route("*", "/v3/organizations/{org}/sessions/{devin_id}", answer)
    return app
