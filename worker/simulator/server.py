"""Serving the simulator on loopback: in-process for tests, or until a signal for users."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .app import SIMULATOR_KEY, make_app
from .config import SimulatorConfig
from .population import Session, terminable_ids, write_ids_csv
from .stats import SimulatorStats


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator being served: where, and its live state."""

    base_url: str
    config: SimulatorConfig
    stats: SimulatorStats
    sessions: dict[str, Session]


def check_loopback(host: str) -> None:
    """Refuse to serve anywhere but loopback: the simulator hands out a fixed token."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"refusing to serve the simulator on {host!r}: it accepts a well-known token, "
            "so it only listens on loopback (127.0.0.0/8, ::1 or localhost)"
        )


@contextlib.asynccontextmanager
async def running_simulator(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> AsyncIterator[RunningSimulator]:
    """Serve ``make_app(config)`` on ``host:port`` (0: a free port) for the ``with`` block."""
    check_loopback(host)
    app = make_app(config, clock=clock, now=now)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        sim = app[SIMULATOR_KEY]
        yield RunningSimulator(f"http://{shown}:{bound_port}", config, sim.stats, sim.sessions)
    finally:
        await runner.cleanup()


def serve(
    config: SimulatorConfig, host: str, port: int, write_ids: str | None, *, quiet: bool = False
) -> None:
    """Serve until SIGINT/SIGTERM, after one line on stderr saying where and how (none if
    ``quiet``).

    The process's loop is uvloop's: the simulator's own CPU per answer is what a client
    beside it on the same cores does not get, and most of it is the loop's and aiohttp's,
    not the simulator's code; uvloop's loop takes about a fifth to a quarter less of it.
    """
    check_loopback(host)
    run_served(_serve(config, host, port, write_ids, quiet))


def run_served(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to its end on a new loop of the kind `serve` uses (uvloop's)."""
    import uvloop  # (here: only a served simulator pays for its import)

    uvloop.run(main)


async def _serve(
    config: SimulatorConfig, host: str, port: int, write_ids: str | None, quiet: bool
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_simulator(config, host, port) as sim:
        ids = terminable_ids(sim.sessions)
        if write_ids is not None:
            write_ids_csv(write_ids, ids)
        wrote = f", ids written to {write_ids}" if write_ids else ""
        if quiet:
            await stop.wait()
            return
        print(
            f"devin simulator at {sim.base_url} org {config.org_id} "
            f"({len(sim.sessions)} sessions, {len(ids)} terminable{wrote}); "
            f"token: set DEVIN_API_KEY={config.token}",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()


@contextmanager
def simulator_in_thread(config: SimulatorConfig) -> Iterator[RunningSimulator]:
    """Serve the simulator from a thread of its own (on the loop `serve` uses) until the block
    ends."""
    ready: list[RunningSimulator] = []
    started, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with running_simulator(config) as sim:
            ready.append(sim)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=run_served, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the simulator did not start")
    try:
        yield ready[0]
    finally:
        stop.set()
        thread.join(5)
