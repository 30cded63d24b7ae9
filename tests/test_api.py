"""The library entry point, fed by a list, an async generator and an asyncio.Queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from conftest import session_results

from worker import SessionResult, terminate_sessions
from worker.simulator import SimulatorConfig
from worker.simulator.population import terminable_ids
from worker.simulator.server import running_simulator

CONFIG = SimulatorConfig(sessions=30, token="cog_api_test", org_id="org-api")


async def test_iterable_async_iterable_and_queue(tmp_path: Path) -> None:
    async with running_simulator(CONFIG) as sim:
        ids = terminable_ids(sim.sessions)
        common = {
            "org_id": CONFIG.org_id,
            "token": CONFIG.token,
            "base_url": sim.base_url,
            "rate": 0,
        }

        first = await terminate_sessions([*ids[:10], ids[0], "bad id"], archive=True, **common)
        assert first.counts == {"archived": 10, "duplicate": 1, "invalid": 1}
        assert first.exit_code == 1
        assert all(isinstance(r, SessionResult) for r in first.results)
        assert {r.session_id for r in first.by_outcome("archived")} == set(ids[:10])

        async def more() -> AsyncIterator[str]:
            for sid in ids[10:20]:
                yield sid

        second = await terminate_sessions(more(), results_path=tmp_path / "r.jsonl", **common)
        assert second.counts == {"terminated": 10} and second.exit_code == 0
        assert len(session_results(tmp_path / "r.jsonl")) == 10

        queue: asyncio.Queue[str | None] = asyncio.Queue()
        seen: list[SessionResult] = []
        for sid in ids[20:]:
            queue.put_nowait(sid)
        queue.put_nowait(None)
        third = await terminate_sessions(queue, on_result=seen.append, keep_results=False, **common)
        assert third.counts == {"terminated": len(ids) - 20} and third.results == []
        assert len(seen) == len(ids) - 20
        assert sim.stats.snapshot()["deletes_by_session"] == dict.fromkeys(ids, 1)
