"""The fleet's commands say nothing on stderr but their own lines: no library warning.

redis-py 8 warns (``UserWarning``) when a synchronous ``redis.retry.Retry`` reaches its
asyncio client; a cron night (``work -q --until-empty``) would mail that every night. Child
processes, with every warning shown each time (``PYTHONWARNINGS=always``), not pytest's
filter: what an operator's terminal or cron mail would show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli_process
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.subprocess

_WARNINGS = ("Warning:", "Warning (", "warnings.warn")


def test_enqueue_work_and_report_print_no_library_warning(
    simulator: Any,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    sim = simulator("--sessions", "12")
    env = cli_env(sim, PYTHONWARNINGS="always")
    commands = [
        ["enqueue", str(sim.ids_path), "--redis", redis_server.url],
        ["work", "--redis", redis_server.url, "--until-empty", "--results", "w.jsonl"],
        ["report", "--redis", redis_server.url],
    ]
    for args in commands:
        proc = run_cli_process(args, env, cwd=tmp_path)
        assert proc.returncode == 0, (args[0], proc.stderr[-2000:])
        shown = [line for line in proc.stderr.splitlines() if any(w in line for w in _WARNINGS)]
        assert shown == [], (args[0], shown)
    assert (tmp_path / "w.jsonl").read_text().count('"session.result"') == 12
