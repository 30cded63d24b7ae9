"""The in-process CLI and simulator stand in for processes: same answers, no state left over."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import cli_env, run_args, run_cli, run_cli_process, session_results

from worker.output.redact import REDACTOR

_TS = re.compile(r'"ts":"[^"]*"')


def _state() -> tuple[Any, ...]:
    return (
        dict(os.environ),
        os.getcwd(),
        (sys.stdin, sys.stdout, sys.stderr, sys.argv),
        structlog.get_config(),
        logging.getLogger().handlers[:],
        logging.getLogger().level,
        signal.getsignal(signal.SIGINT),
        signal.getsignal(signal.SIGTERM),
        REDACTOR._secrets[:],
        structlog.contextvars.get_contextvars(),
    )


@pytest.mark.subprocess
def test_in_process_answers_as_the_process_does(tmp_path: Path) -> None:
    env = cli_env(DEVIN_API_KEY="cog_harness_token")
    # An argparse exit with stdout, a usage error, a WorkerError rendered as JSON on stderr.
    for args in (["--version"], ["run", "x", "--rate", "fast"], ["run", "--org-id", "o", "nope"]):
        here, there = run_cli(args, env, cwd=tmp_path), run_cli_process(args, env, cwd=tmp_path)
        assert (here.returncode, here.stdout) == (there.returncode, there.stdout), args
        assert _TS.sub("", here.stderr) == _TS.sub("", there.stderr), args
    assert run_cli(["--version"], env, cwd=tmp_path).stdout.startswith("devin-terminate ")


def test_in_process_run_leaves_no_state_behind(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "5")
    before = _state()
    proc = run_cli([*run_args(sim, tmp_path / "r.jsonl"), "--yes"], cli_env(sim), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"run.started"' in proc.stderr  # diagnostics were captured, JSON
    assert len(session_results(tmp_path / "r.jsonl")) == len(sim.ids()) == 5
    assert sim.stats()  # the simulator answers its own endpoint
    assert _state() == before


def test_stdin_reaches_the_run(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "4")
    ids = "\n".join(sim.ids()[:2]) + "\n"
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        ["run", "-", "--results", str(out), "--rate", "0"], cli_env(sim), cwd=tmp_path, stdin=ids
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["session_id"] for r in session_results(out)) == sorted(ids.split())


@pytest.mark.subprocess
def test_simulator_process_is_a_child_that_can_be_killed(simulator_process: Any) -> None:
    sim = simulator_process("--sessions", "3")
    assert sim.process is not None and len(sim.ids()) == 3
    assert sim.stats()["requests_total"] == 0
    sim.process.send_signal(signal.SIGKILL)
    sim.process.wait(10)
    with pytest.raises(urllib.error.URLError):
        sim.stats()
