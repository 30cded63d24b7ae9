"""Shared fixtures: the built-in simulator as a real subprocess on loopback, and the CLI."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog

REPO = Path(__file__).resolve().parent.parent
TOKEN = "cog_test_token_5f3a9c1e"
ORG = "org-test"
_READY = re.compile(r"at (http://127\.0\.0\.1:\d+)")


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A test that configures logging in process (``cli.main``) must not leave structlog
    writing to its captured stream, closed once the test is over."""
    out, err = sys.stdout, sys.stderr
    yield
    structlog.reset_defaults()
    sys.stdout, sys.stderr = out, err


@dataclass
class Simulator:
    base_url: str
    ids_path: Path
    process: subprocess.Popen[str]
    token: str = TOKEN
    org_id: str = ORG
    log: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return self.ids_path.read_text().split()[1:]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/_simulator/stats", timeout=10) as resp:
            data: dict[str, Any] = json.load(resp)
        return data


def _start(tmp_path: Path, args: Sequence[str]) -> Simulator:
    ids_path = tmp_path / f"ids-{len(list(tmp_path.glob('ids-*')))}.csv"
    cmd = [
        sys.executable,
        "-m",
        "worker",
        "simulate",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--org-id",
        ORG,
        "--write-ids",
        str(ids_path),
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        match = _READY.search(line)
        if match:
            return Simulator(match.group(1), ids_path, proc)
    proc.wait(5)
    raise RuntimeError(f"simulator did not start: exit {proc.returncode}")


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    """``simulator("--sessions", "50", ...)`` starts one; all are stopped after the test."""
    started: list[Simulator] = []

    def start(*args: str) -> Simulator:
        sim = _start(tmp_path, args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.process.terminate()
        try:
            sim.process.wait(5)
        except subprocess.TimeoutExpired:
            sim.process.kill()
        if sim.process.stderr is not None:
            sim.process.stderr.close()


def cli_env(sim: Simulator | None = None, **extra: str) -> dict[str, str]:
    """Environment for the CLI: the simulator's token and org, zero backoff, no TTY tricks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVIN_", "NO_COLOR"))}
    env.update(
        {
            "DEVIN_TERMINATE_BACKOFF_BASE": "0",
            "DEVIN_TERMINATE_RETRY_AFTER_MAX": "0",
            "DEVIN_TERMINATE_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if sim is not None:
        env.update(
            {"DEVIN_API_KEY": sim.token, "DEVIN_ORG_ID": sim.org_id, "DEVIN_API_URL": sim.base_url}
        )
    env.update(extra)
    return env


def run_args(sim: Simulator, results: Path, *extra: str) -> list[str]:
    """``run`` over the simulator's ids into ``results``, no rate limit, plus ``extra``."""
    return ["run", str(sim.ids_path), "--results", str(results), "--rate", "0", *extra]


def run_cli(
    args: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def read_results(path: Path, *, strict: bool = True) -> list[dict[str, Any]]:
    """Every record; ``strict=False`` passes over unreadable lines (a torn line after kill -9)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if strict:
                raise
    return records


def session_results(path: Path, *, strict: bool = True) -> list[dict[str, Any]]:
    return [r for r in read_results(path, strict=strict) if r["event"] == "session.result"]


def run_on_pty(
    args: Sequence[str], env: dict[str, str], cwd: Path, *, answer: bytes | None = None
) -> tuple[int, str, str]:
    """Run the CLI with stderr (and, when ``answer`` is given, stdin) on a pseudo-terminal.

    ``answer`` is typed once the ``[y/N]`` prompt shows. Returns (exit code, the screen,
    stdout, which stays a pipe: data).
    """
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=env,
        cwd=cwd,
        stdin=slave if answer is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    screen = b""
    while select.select([master], [], [], 30)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        screen += data
        if answer is not None and b"[y/N]" in screen:
            os.write(master, answer)
            answer = None
    os.close(master)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(30), screen.decode(errors="replace"), stdout
