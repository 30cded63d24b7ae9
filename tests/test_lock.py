"""The lock guards a file, not a spelling: symlinks, hard links, --lock misuse, planted links."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, cli_env, run_args, run_cli, session_results
from worker.errors import ConfigError, LockError
from worker.output.lock import RunLock


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "r.jsonl"
    path.write_text('{"event":"run.started"}\n')
    return path


def test_a_symlink_or_hard_link_to_a_locked_log_is_locked_too(tmp_path: Path) -> None:
    log = _log(tmp_path)
    (tmp_path / "sym.jsonl").symlink_to(log)
    os.link(log, tmp_path / "hard.jsonl")
    (tmp_path / "dir").mkdir()
    with RunLock(log):
        for other in ("sym.jsonl", "hard.jsonl"):
            with pytest.raises(LockError) as caught:
                RunLock(tmp_path / other).__enter__()
            assert caught.value.exit_code == 4
        with pytest.raises(LockError):  # its own --lock file does not get it past the log
            RunLock(tmp_path / "hard.jsonl", tmp_path / "dir" / "own.lock").__enter__()
    with RunLock(tmp_path / "hard.jsonl"):  # released: free again
        pass
    assert log.read_text() == '{"event":"run.started"}\n'


def test_lock_naming_the_result_log_is_a_usage_error(tmp_path: Path) -> None:
    log = _log(tmp_path)
    os.link(log, tmp_path / "hard.lock")
    for lock in (log, tmp_path / "hard.lock"):
        with pytest.raises(ConfigError, match="is the result log") as caught:
            RunLock(log, lock).__enter__()
        assert caught.value.exit_code == 2
    assert log.read_text() == '{"event":"run.started"}\n'


def test_a_planted_lock_symlink_is_not_followed(tmp_path: Path) -> None:
    log = _log(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    Path(f"{log}.lock").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        RunLock(log).__enter__()
    assert victim.read_text() == "precious\n"


def test_a_file_that_is_not_a_lock_is_never_truncated(tmp_path: Path) -> None:
    log = _log(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a pid\n")
    with pytest.raises(ConfigError, match="not a lock file"):
        RunLock(log, notes).__enter__()
    assert notes.read_text() == "my notes, not a pid\n"
    pid_file = tmp_path / "old.lock"
    pid_file.write_text("12345")
    with RunLock(log, pid_file):
        assert pid_file.read_text() == str(os.getpid())


def _wait_for_results(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and b'"session.result"' in path.read_bytes():
            return
        time.sleep(0.05)
    raise AssertionError("the first run recorded nothing")


def test_second_run_through_a_symlink_exits_4_and_sends_nothing_twice(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "200", "--latency-ms", "200")  # the first run lasts ~20 s
    out = tmp_path / "r.jsonl"
    (tmp_path / "alias.jsonl").symlink_to(out)
    first = subprocess.Popen(
        [sys.executable, "-m", "worker", *run_args(sim, out, "--concurrency", "2")],
        env=cli_env(sim),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_for_results(out, first)
        second = run_cli(run_args(sim, tmp_path / "alias.jsonl"), cli_env(sim), cwd=tmp_path)
        assert second.returncode == 4, second.stderr
        assert "holds the lock" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(20)
    assert sim.stats()["sessions_with_multiple_deletes"] == 0
    finals = Counter(r["session_id"] for r in session_results(out) if r["outcome"] != "cancelled")
    assert finals and max(finals.values()) == 1


def test_work_takes_the_lock_of_its_result_log(tmp_path: Path) -> None:
    """``work`` locks its real log (named through a symlink too), never a ``.lock.lock``."""
    from worker.fleet.options import FleetOptions
    from worker.fleet.work import run_worker
    from worker.settings import load_settings

    log = _log(tmp_path)
    (tmp_path / "sym.jsonl").symlink_to(log)
    env = {"DEVIN_API_KEY": "apk_user_x", "DEVIN_ORG_ID": "org-x"}
    options = FleetOptions("redis://127.0.0.1:1", None, "ids", consumer="w1")
    for lock in (None, tmp_path / "custom.lock"):
        settings = load_settings(
            {"results": str(tmp_path / "sym.jsonl"), "lock": lock}, environ=env
        )
        with RunLock(log), pytest.raises(LockError) as caught:  # a run, or another worker
            run_worker(settings, options)
        assert caught.value.exit_code == 4
    assert not list(tmp_path.glob("*.lock.lock"))
    assert log.read_text() == '{"event":"run.started"}\n'
