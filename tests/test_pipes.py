"""stdout and stderr as operators' machines hand them over: a reader that leaves
(``| head -1``), a closed descriptor (``>&-``), a full disk (``> /dev/full``), and a run
whose stderr reader died. Real processes: only a process has descriptors to close."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, cli_env

pytestmark = pytest.mark.subprocess


def _log(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "r.jsonl"
    lines = [
        {
            "event": "session.result",
            "run_id": "r1",
            "ts": "2026-01-01T00:00:00Z",
            "session_id": f"devin-{i:05d}",
            "outcome": "terminated",
            "archived": False,
            "attempts": 1,
            "error": None,
            "source": "ids.txt:1",
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _close_after_first_line(argv: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(30) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_report_into_a_pipe_closed_early_is_quiet(tmp_path: Path) -> None:
    log = _log(tmp_path, 20_000)  # more than a pipe holds
    _close_after_first_line(["report", str(log), "--format", "ids"])


def test_list_into_a_pipe_closed_early_is_quiet(simulator: Any) -> None:
    sim = simulator("--sessions", "700")
    _close_after_first_line(["list"], cli_env(sim, DEVIN_TERMINATE_LOG_LEVEL="warning"))


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"])
def test_report_to_closed_or_full_stdout_is_one_line(tmp_path: Path, redirect: str) -> None:
    log = _log(tmp_path, 3)
    proc = subprocess.run(
        ["sh", "-c", f'exec "$0" -m worker report "$1" {redirect}', sys.executable, str(log)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "cannot write to stdout" in proc.stderr


def test_list_to_closed_stdout_is_one_line(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "5")
    proc = subprocess.run(
        ["sh", "-c", 'exec "$0" -m worker list >&-', sys.executable],
        cwd=REPO,
        env=cli_env(sim),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "cannot write to stdout" in proc.stderr


def test_a_run_whose_stderr_reader_died_finishes_and_records(
    simulator: Any, tmp_path: Path
) -> None:
    # every third DELETE fails for good: a warning line each, long after the reader left
    # (at 200/s the run lasts a second: the default 20/s made this test ten)
    sim = simulator("--sessions", "200", "--fault", "500=0.3")
    results = tmp_path / "r.jsonl"
    env = cli_env(
        sim,
        DEVIN_TERMINATE_MAX_ATTEMPTS="1",
        DEVIN_TERMINATE_LOG_FORMAT="console",
        DEVIN_TERMINATE_RATE="200",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker",
            "run",
            str(sim.ids_path),
            "--yes",
            "-v",
            "--results",
            str(results),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    assert proc.stderr.readline()  # the first line, then the logger dies
    proc.stderr.close()
    code = proc.wait(60)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    settled = {r["session_id"] for r in records if r["event"] == "session.result"}
    finished = records[-1]
    assert settled == set(sim.ids()) and len(settled) == 200
    assert finished["event"] == "run.finished"
    failed = finished["counts"].get("failed", 0)
    assert failed > 0 and code == finished["exit_code"] == 1


def test_a_run_with_stdout_closed_exits_with_its_own_code(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "5")
    results = tmp_path / "r.jsonl"
    proc = subprocess.run(
        ["sh", "-c", 'exec "$0" -m worker run "$1" --results "$2" >&-', sys.executable,
         str(sim.ids_path), str(results)],
        cwd=tmp_path, env=cli_env(sim), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(results.read_text().splitlines()[-1])["exit_code"] == 0
