"""The library run is the CLI's run: the same result log records, lock, resume and identity
check (``GET /v3/self`` before the first DELETE)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.conftest import cli_env, read_results, run_cli
from worker import SessionResult, terminate_sessions
from worker.errors import ConfigError, LockError, PreflightError
from worker.output.lock import RunLock
from worker.simulator import SimulatorConfig
from worker.simulator.population import terminable_ids
from worker.simulator.server import RunningSimulator, running_simulator

CONFIG = SimulatorConfig(sessions=30, token="cog_api_run_test", org_id="org-apirun")


def _options(base_url: str, **extra: Any) -> dict[str, Any]:
    values = {"org_id": CONFIG.org_id, "token": CONFIG.token, "base_url": base_url, "rate": 0}
    return {**values, "backoff_base": 0, **extra}


def _sent(sim: RunningSimulator) -> dict[str, int]:
    deletes: dict[str, int] = sim.stats.snapshot()["deletes_by_session"]
    return deletes


def _shape(path: Path) -> dict[str, Any]:
    """What must match between two logs of the same ids: record kinds, their order at both
    ends, their keys, the settings named, the org and API (no times, ids or paths)."""
    records = read_results(path)
    kinds = [r["event"] for r in records]
    started, finished = records[0], records[-1]
    return {
        "ends": (kinds[0], kinds[-1]),
        "kinds": Counter(kinds),
        "keys": {kind: sorted(r) for r in records for kind in [r["event"]]},
        "settings": sorted(started.get("settings", {})),
        "owner": (started.get("org_id"), started.get("base_url")),
        "finished": (finished.get("counts"), finished.get("exit_code")),
    }


def test_a_library_log_has_the_records_of_a_cli_log(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "40")
    ids = sim.ids()
    half = len(ids) // 2
    (tmp_path / "a.txt").write_text("\n".join(ids[:half]) + "\n")
    cli_log, lib_log = tmp_path / "cli.jsonl", tmp_path / "lib.jsonl"
    args = ["run", str(tmp_path / "a.txt"), "--results", str(cli_log), "--rate", "0"]
    assert run_cli(args, cli_env(sim), cwd=tmp_path).returncode == 0
    summary = asyncio.run(
        terminate_sessions(
            ids[half : 2 * half],
            org_id=sim.org_id,
            token=sim.token,
            base_url=sim.base_url,
            results_path=lib_log,
            rate=0,
        )
    )
    assert summary.exit_code == 0 and summary.counts == {"terminated": half}
    cli, lib = _shape(cli_log), _shape(lib_log)
    assert lib == cli
    assert lib["ends"] == ("run.started", "run.finished")
    assert lib["kinds"]["session.result"] == half and lib["owner"] == (sim.org_id, sim.base_url)
    assert read_results(lib_log)[0]["inputs"] == ["<library: iterable>"]


async def test_a_lock_held_by_a_cli_run_stops_a_library_run_before_any_request(
    tmp_path: Path,
) -> None:
    log = tmp_path / "r.jsonl"
    async with running_simulator(CONFIG) as sim:
        with RunLock(log), pytest.raises(LockError) as caught:  # what `run` takes
            await terminate_sessions(
                terminable_ids(sim.sessions), results_path=log, **_options(sim.base_url)
            )
        assert sim.stats.snapshot()["requests_total"] == 0
    assert caught.value.exit_code == 4 and "holds the lock" in str(caught.value)
    assert log.read_bytes() == b""


async def test_a_second_library_run_on_a_log_in_use_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    async with running_simulator(CONFIG) as sim:
        ids = terminable_ids(sim.sessions)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        queue.put_nowait(ids[0])
        settled = asyncio.Event()

        def heard(result: SessionResult) -> None:
            settled.set()

        first = asyncio.create_task(
            terminate_sessions(queue, results_path=log, on_result=heard, **_options(sim.base_url))
        )
        await asyncio.wait_for(settled.wait(), 10)  # the first run is under way
        with pytest.raises(LockError):
            await terminate_sessions(ids[1:4], results_path=log, **_options(sim.base_url))
        queue.put_nowait(None)
        summary = await asyncio.wait_for(first, 10)
        assert summary.counts == {"terminated": 1}
        assert _sent(sim) == {ids[0]: 1}
    kinds = [r["event"] for r in read_results(log)]
    assert kinds == ["run.started", "session.sending", "session.result", "run.finished"]


@pytest.mark.parametrize("logged", [True, False])
async def test_a_token_of_another_org_sends_no_delete(tmp_path: Path, logged: bool) -> None:
    log = tmp_path / "r.jsonl"
    async with running_simulator(CONFIG) as sim:
        options = _options(sim.base_url, org_id="org-typo")
        with pytest.raises(PreflightError) as caught:
            await terminate_sessions(
                terminable_ids(sim.sessions), results_path=log if logged else None, **options
            )
        assert _sent(sim) == {}
        assert sim.stats.snapshot()["requests_by_method"] == {"GET": 1}  # GET /v3/self only
    assert caught.value.exit_code == 3
    assert "org-typo" in str(caught.value) and CONFIG.org_id in str(caught.value)
    if logged:
        assert read_results(log) == []  # not even run.started
    else:
        assert not log.exists()


async def test_a_rerun_on_the_same_log_skips_the_settled_ids(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    async with running_simulator(CONFIG) as sim:
        ids = terminable_ids(sim.sessions)
        options = _options(sim.base_url)
        first = await terminate_sessions(ids[:5], results_path=log, **options)
        again = await terminate_sessions(ids[:8], results_path=log, **options)
        assert first.counts == {"terminated": 5}
        assert again.counts == {"skipped": 5, "terminated": 3}
        assert _sent(sim) == dict.fromkeys(ids[:8], 1)
        assert "run_id" not in structlog.contextvars.get_contextvars()  # the caller's, as it was
        # the same API under another name is another owner: refused before any request
        other = sim.base_url.replace("127.0.0.1", "localhost")
        before = sim.stats.snapshot()["requests_total"]
        with pytest.raises(ConfigError, match="belongs to org"):
            await terminate_sessions(ids, results_path=log, **_options(other))
        assert sim.stats.snapshot()["requests_total"] == before
    starts = [r for r in read_results(log) if r["event"] == "run.started"]
    assert len(starts) == 2 and {r["base_url"] for r in starts} == {sim.base_url}


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ({"concurrency": 0}, r"setting concurrency \(from an argument\)"),
        ({"colour": "red"}, "unknown setting 'colour'"),
        ({"max_sessions": 10}, "cannot be counted ahead"),
        ({"metrics_file": "night.prom"}, "RunSummary"),
    ],
)
async def test_a_bad_setting_raises_the_cli_config_error(bad: dict[str, Any], said: str) -> None:
    with pytest.raises(ConfigError, match=said) as caught:  # before any connection is tried
        await terminate_sessions(["devin-a"], **_options("http://127.0.0.1:9"), **bad)
    assert caught.value.exit_code == 2


def test_a_cli_abort_names_its_run(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "10")
    out = tmp_path / "r.jsonl"
    done = run_cli(
        ["run", str(sim.ids_path), "--results", str(out)],
        cli_env(sim, DEVIN_ORG_ID="org-typo"),
        cwd=tmp_path,
    )
    assert done.returncode == 3
    aborted = [json.loads(line) for line in done.stderr.splitlines() if "run.aborted" in line]
    assert len(aborted) == 1 and len(aborted[0]["run_id"]) == 12
