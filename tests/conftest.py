"""Shared fixtures: the built-in simulator on loopback, and the CLI.

Both run in this process by default (``tests/inprocess.py``): ``simulator(...)`` serves the
simulator app from a thread on a real socket, ``run_cli(...)`` calls ``worker.cli.main``.
``simulator_process(...)`` and ``run_cli_process(...)`` (or ``run_cli(..., subprocess=True)``)
start real processes, for what only a process shows: signals, kill -9, a pty, a lock held
by another process, interpreter shutdown, a bare environment.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import subprocess
import sys
import termios
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import prism
import pytest
import structlog
from hypothesis import settings as hypothesis_settings
from inprocess import ServedSimulator, run_main

from worker.fleet.server import stop_process

REPO = Path(__file__).resolve().parent.parent
TOKEN = "cog_test_token_5f3a9c1e"
ORG = "org-test"
_READY = re.compile(r"at (http://127\.0\.0\.1:\d+)")

# Property tests draw 100 examples each by default (`make test` stays quick); CI draws 300
# (HYPOTHESIS_PROFILE=ci in .ci/run). A test that sets max_examples keeps its own number.
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.register_profile("ci", max_examples=300, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """A test that configures logging in process (``cli.main``) must not leave structlog
    writing to its captured stream, closed once the test is over."""
    out, err = sys.stdout, sys.stderr
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()  # e.g. a run_id bound by a run in process
    sys.stdout, sys.stderr = out, err


@dataclass
class Simulator:
    """A simulator on loopback: served in-process (``served``) or a child (``process``)."""

    base_url: str
    ids_path: Path
    process: subprocess.Popen[str] | None = None
    token: str = TOKEN
    org_id: str = ORG
    log: list[str] = field(default_factory=list)
    served: ServedSimulator | None = None

    def ids(self) -> list[str]:
        return self.ids_path.read_text().split()[1:]

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/_simulator/stats", timeout=10) as resp:
            data: dict[str, Any] = json.load(resp)
        return data

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()
            self.log.extend(self.served.errors)
        if self.process is not None:
            stop_process(self.process)
            if self.process.stderr is not None:
                self.process.stderr.close()


def _argv(tmp_path: Path, args: Sequence[str]) -> tuple[Path, list[str]]:
    ids_path = tmp_path / f"ids-{len(list(tmp_path.glob('ids-*')))}.csv"
    argv = ["--port", "0", "--token", TOKEN, "--org-id", ORG, "--write-ids", str(ids_path)]
    return ids_path, [*argv, *args]


def _serve(tmp_path: Path, args: Sequence[str]) -> Simulator:
    ids_path, argv = _argv(tmp_path, args)
    served = ServedSimulator(argv)
    running = served.start()
    return Simulator(running.base_url, ids_path, served=served)


def _spawn(tmp_path: Path, args: Sequence[str]) -> Simulator:
    ids_path, argv = _argv(tmp_path, args)
    cmd = [sys.executable, "-m", "worker", "simulate", *argv]
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


def _simulators(tmp_path: Path, make: Any) -> Iterator[Any]:
    started: list[Simulator] = []

    def start(*args: str) -> Simulator:
        sim: Simulator = make(tmp_path, args)
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    """``simulator("--sessions", "50", ...)`` serves one in-process; stopped after the test."""
    yield from _simulators(tmp_path, _serve)


@pytest.fixture
def simulator_process(tmp_path: Path) -> Iterator[Any]:
    """The same as a child process (``sim.process``), for a test that kills or restarts it."""
    yield from _simulators(tmp_path, _spawn)


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
    subprocess: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``devin-terminate ARGS``: exit code, stdout, stderr, as ``subprocess.run`` gives them.

    In-process (``worker.cli.main``, ``timeout`` left to pytest-timeout) unless
    ``subprocess=True``, which starts ``python -m worker`` (see ``run_cli_process``).
    """
    if subprocess:
        return run_cli_process(args, env, cwd=cwd, stdin=stdin, timeout=timeout)
    return run_main(args, env, cwd=cwd, stdin=stdin)


def run_cli_process(
    args: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``python -m worker ARGS`` as a child process, for what only a process shows."""
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


def quick_settings(org_id: str, token: str, base_url: str, results: Path, **extra: object) -> Any:
    """Settings of an in-process run against a simulator: no rate limit, no backoff, no
    waiting out Retry-After, no confirmation; ``extra`` sets any other field."""
    from worker.settings import load_settings

    flags = {
        "org_id": org_id,
        "base_url": base_url,
        "rate": 0,
        "backoff_base": 0,
        "retry_after_max": 0,
        "results": str(results),
        "yes": True,
        **extra,
    }
    return load_settings(flags, environ={"DEVIN_API_KEY": token})


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
    args: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    *,
    answer: bytes | None = None,
    piped: bytes | None = None,
) -> tuple[int, str, str]:
    """Run the CLI with stderr (and, when ``answer`` is given, stdin) on a pseudo-terminal.

    ``answer`` is typed once the ``[y/N]`` prompt shows. ``piped``: stdin is a pipe giving
    these bytes instead, and the pseudo-terminal is the child's controlling terminal
    (``/dev/tty``), as for ``cat ids | devin-terminate run -`` typed at a terminal.
    Returns (exit code, the screen, stdout, which stays a pipe: data).
    """
    master, slave = os.openpty()
    stdin: int = slave if answer is not None and piped is None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if piped is not None else stdin,
        stdout=subprocess.PIPE,
        stderr=slave,
        start_new_session=piped is not None,
        # the new session's controlling terminal: the pty on fd 2
        preexec_fn=(lambda: fcntl.ioctl(2, termios.TIOCSCTTY, 0)) if piped is not None else None,
    )
    os.close(slave)
    if piped is not None:
        assert proc.stdin is not None
        proc.stdin.write(piped)
        proc.stdin.close()
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


# --------------------------------------------------------------------------- two workers

#: Files whose tests one worker runs whole, in order: the Prism contract tests read one
#: shared server log between fences; the simulator's contract parses the spec once (a
#: module fixture, ~1 CPU-second). Every other test goes by itself to the worker that is
#: free (the longest file no longer holds one worker to the end).
ONE_WORKER = {"tests/test_contract_prism.py": "prism", "tests/test_simulator_contract.py": "spec"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` with the groups of ``ONE_WORKER``. (xdist 3.8 groups tests
    marked ``xdist_group`` by renaming their node ids, which pytest 9.2 no longer lets it
    do: the marks alone group nothing.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    # In collection order: a group runs where its file sits (the Prism file a few seconds
    # in, its servers booting meanwhile), not first as the largest unit of work.
    config.option.loadscopereorder = False

    class Grouped(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = ONE_WORKER.get(nodeid.split("::", 1)[0])
            return group if group is not None else str(super()._split_scope(nodeid))

    return Grouped(config, log)


# --------------------------------------------------------------------------- Prism, once


def pytest_configure(config: pytest.Config) -> None:
    """In the controller: start the contract check's Prism servers once for the session."""
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    if prism.PRISM_ENV in os.environ:  # set by a parent session, or by `make mutate`
        return
    if not prism.selected(list(config.args), config.invocation_params.dir):
        return
    try:
        prism.publish(prism.start_all())
    except (prism.PrismUnavailable, OSError, subprocess.SubprocessError) as error:
        prism.publish(None, f"{type(error).__name__}: {error}")
    config.add_cleanup(prism.stop_all)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    _, problem = prism.published()
    if problem is not None:
        terminalreporter.write_sep("!", "PRISM CONTRACT CHECK NOT RUN", red=True, bold=True)
        terminalreporter.write_line(problem)
