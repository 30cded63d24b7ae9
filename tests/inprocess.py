"""In-process doubles of two subprocesses the tests used to start: the simulator and the CLI.

- ``ServedSimulator``: the ``simulate`` command's flags, parsed by its own parser, served by
  ``running_simulator`` on a real loopback socket (port 0) from a background thread with its
  own event loop. Starting one costs milliseconds instead of a Python start-up.
- ``run_main``: ``worker.cli.main(argv)`` in this process, with the environment, working
  directory, stdin, stdout and stderr of a child process swapped in for the call and every
  piece of global state the CLI sets (structlog, logging handlers, the redactor's secrets,
  signal handlers, context variables) put back afterwards. It returns what
  ``subprocess.run(..., capture_output=True, text=True)`` would.

What cannot be done in-process (signals, kill -9, a pty, another process holding the lock,
interpreter shutdown, ``env -i``) goes through ``conftest.run_cli_process``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import io
import itertools
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import structlog

from worker.simulator.command import config_from_args, configure_parser
from worker.simulator.population import terminable_ids, write_ids_csv
from worker.simulator.server import RunningSimulator, run_served, running_simulator

_THREAD_PREFIX = "simulator-"
_SERIAL = itertools.count()
# Loggers the simulator's server writes to; their records from a simulator thread are kept
# off the CLI's stderr (in a subprocess they went to the simulator's own stderr).
_SERVER_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access", "asyncio")


class _FromSimulatorThread(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith(_THREAD_PREFIX)


def _quiet_server_loggers() -> None:
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _FromSimulatorThread) for f in logger.filters):
            logger.addFilter(_FromSimulatorThread())


class ServedSimulator:
    """``devin-terminate simulate ARGV`` served from a thread of this process."""

    def __init__(self, argv: Sequence[str]) -> None:
        parser = argparse.ArgumentParser(prog="devin-terminate simulate", exit_on_error=False)
        configure_parser(parser)
        try:
            self._args = parser.parse_args(list(argv))
            self._config = config_from_args(self._args)
        except (argparse.ArgumentError, ValueError, SystemExit) as error:
            raise RuntimeError(f"simulator flags {list(argv)} refused: {error}") from error
        self.running: RunningSimulator | None = None
        self.errors: list[str] = []
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"{_THREAD_PREFIX}{next(_SERIAL)}", daemon=True
        )

    def start(self) -> RunningSimulator:
        _quiet_server_loggers()
        self._thread.start()
        if not self._ready.wait(30) or self.running is None:
            raise RuntimeError(f"simulator did not start: {self._failure!r}")
        if self._args.write_ids is not None:
            write_ids_csv(self._args.write_ids, terminable_ids(self.running.sessions))
        return self.running

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        if self._thread.is_alive():
            raise RuntimeError("the in-process simulator did not stop within 30 s")

    def _main(self) -> None:
        try:
            run_served(self._serve())  # on the loop the command serves it on
        except BaseException as error:  # reported by start(); the thread must not die loudly
            self._failure = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        self._stop = asyncio.Event()
        async with running_simulator(self._config, self._args.host, self._args.port) as sim:
            self.running = sim
            self._ready.set()
            await self._stop.wait()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.errors.append(str(context.get("exception") or context.get("message")))


# --------------------------------------------------------------------------- the CLI


def run_main(
    args: Sequence[str], env: dict[str, str], *, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m worker ARGS`` as a call: exit code, stdout and stderr as a child's."""
    out, err = io.BytesIO(), io.BytesIO()
    # stdin with a real descriptor, as a child's: the run reads a duplicate of it
    given = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    given.write((stdin or "").encode())
    given.seek(0)
    streams = (
        io.TextIOWrapper(given, encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True),
    )
    argv = ["devin-terminate", *args]
    with _child_state(env, cwd, argv, streams):
        code = contextvars.Context().run(_call_main, list(args))  # a fresh one, as a child has
    for stream in streams:
        stream.flush()
    stdout, stderr = _text(out.getvalue()), _text(err.getvalue())
    for stream in streams:
        stream.detach()
    given.close()
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "worker", *args], code, stdout, stderr
    )


def _call_main(args: list[str]) -> int:
    from worker.cli import main

    try:
        return main(args)
    except SystemExit as done:
        return _exit_status(done.code)
    except Exception:  # what the interpreter does with an uncaught exception
        traceback.print_exc(file=sys.stderr)
        return 1
    # Anything else (pytest-timeout's failure, Ctrl-C at the test run) is the test's.


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _text(data: bytes) -> str:
    """Decoded as ``subprocess.run(text=True)`` does: universal newlines."""
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _child_state(
    env: dict[str, str], cwd: Path, argv: list[str], streams: tuple[io.TextIOWrapper, ...]
) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_argv = sys.argv
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    from worker.output.redact import REDACTOR

    saved_secrets = (REDACTOR._secrets[:], REDACTOR._secret_bytes[:])
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.argv = argv
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        structlog.reset_defaults()
        structlog.configure(**saved_structlog)
        for handler in root.handlers:
            if handler not in saved_root[0]:
                handler.close()
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for sig, handler in saved_signals.items():
            signal.signal(sig, handler)
        REDACTOR._secrets[:], REDACTOR._secret_bytes[:] = saved_secrets
