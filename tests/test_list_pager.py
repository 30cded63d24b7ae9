"""The `list` pager: every attempt through the rate gate and the one RetryPolicy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hostile import ORG, TOKEN, Hostile, Reply, pause_gate, problem, serving

from worker.devin.client import ClientOptions, DevinClient
from worker.run.pager import Pager
from worker.settings import Settings

PAGE = Reply(200, {"items": [], "has_next_page": False, "end_cursor": None})


async def _fetch(server: Hostile, pause: float | None = None, **settings: Any) -> Any:
    values: dict[str, Any] = {"org_id": ORG, "backoff_base": 0, "max_attempts": 3, "rate": 0}
    pager = Pager(Settings(**{**values, **settings}))
    if pause is not None:
        pause_gate(pager.gate, pause)
    try:
        async with serving(server) as url, DevinClient(ClientOptions(url, ORG, TOKEN)) as client:
            page = await asyncio.wait_for(pager.fetch(client, {"first": 200}), 0.3)
    finally:
        await pager.gate.aclose()
    return pager, page


async def test_a_page_is_retried_within_the_attempts() -> None:
    server = Hostile({"GET": [problem(500), Reply(200, raw=b"{not json"), PAGE]})
    pager, page = await _fetch(server)
    assert page is not None and pager.pages == 1 and pager.complete
    assert server.count("GET") == 3


async def test_a_page_gives_up_after_max_attempts() -> None:
    server = Hostile({"GET": [problem(503)]})
    pager, page = await _fetch(server)
    assert page is None and not pager.complete and server.count("GET") == 3


async def test_a_retry_after_over_the_cap_gives_up_at_once() -> None:
    server = Hostile({"GET": [problem(429, **{"Retry-After": "3600"}), PAGE]})
    pager, page = await _fetch(server, max_attempts=6)
    assert page is None and not pager.complete and server.count("GET") == 1


async def test_every_page_attempt_waits_for_the_rate_gate() -> None:
    server = Hostile({"GET": [PAGE]})
    with pytest.raises(TimeoutError):
        await _fetch(server, pause=60.0, rate=10)  # under the cap: the gate pauses
    assert server.count("GET") == 0
    _, page = await _fetch(server, rate=10)  # the same gate settings, not paused
    assert page is not None and server.count("GET") == 1
