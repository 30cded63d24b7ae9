"""The command line: parse, dispatch to the command's module, map a ``WorkerError`` to its
exit code. Each command lives in ``worker.commands`` (``configure_parser`` and ``main``);
heavy modules are imported inside the commands so that ``--help`` answers at once."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from worker import _table
from worker._names import TOKEN_ENV
from worker._version import __version__
from worker.commands.options import CONNECTION, EXIT_CODES, Parser, add_flags

# name: (module with configure_parser and main, help). Order is the order of --help.
_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("worker.commands.run", ""),
    "demo": ("worker.commands.demo", ""),
    "list": ("worker.commands.listing", ""),
    "report": ("worker.commands.report", ""),
    "compact": ("worker.commands.compact", ""),
    "config": ("worker.commands.config", ""),
    "simulate": ("worker.simulator.command", "serve the built-in Devin API simulator on loopback"),
    "enqueue": ("worker.commands.enqueue", ""),
    "work": ("worker.commands.work", ""),
}
# The settings flags each command takes (None: all of them); the rest take none.
_FLAGS: dict[str, Sequence[str] | None] = {
    "run": None,
    "list": CONNECTION,
    "enqueue": ("column", "encoding", "log_format", "log_level"),
    "work": tuple(
        n
        for n in _table.BY_NAME
        if n
        not in ("resume", "max_sessions", "yes", "column", "encoding", "dry_run", "metrics_file")
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, just that command's part (what a run needs:
    each command module imported costs start-up time)."""
    parser = Parser(
        prog="devin-terminate",
        description="Terminate Devin sessions in bulk through the Devin API v3, with a result log.",
        epilog=f"The token comes from {TOKEN_ENV} or --token-file, never from a flag.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    for name, (module_name, text) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        options: dict[str, Any] = (
            dict(module.PARSER) if hasattr(module, "PARSER") else {"help": text or module.HELP}
        )
        options.setdefault("description", options["help"])
        command = commands.add_parser(name, **options)
        module.configure_parser(command)
        if name in _FLAGS:
            add_flags(command, _FLAGS[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    command = given[0] if given and given[0] in _COMMANDS else None
    args = build_parser(command).parse_args(given)
    from worker.output.logs import configure_logging

    configure_logging()  # plain lines on stderr until a command's settings say otherwise
    try:
        code = int(importlib.import_module(_COMMANDS[args.command][0]).main(args))
        sys.stdout.flush()  # a full or closed stdout is the command's error, not teardown's
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _fatal(exc, args.command)


# Commands that talk to the API: aiohttp's import (0.2 s, about half of it two TLS contexts
# built in C with the GIL released) starts in a thread at once and overlaps the flags,
# logging and the settings of the main thread.
_NETWORK = frozenset({"run", "list", "work", "demo"})

# Python's cyclic collector walks its youngest objects each time 700 more are alive. A run
# keeps more than that alive all along (some 45 objects per request in flight, nearly all
# freed by their reference counts), so it walked them again and again and moved them on to
# the older generations, walked whole in turn: 7 ms per 1,000 sessions at 16 in flight,
# 58 ms at 256, and ~100 passes during the imports. With 10,000, a run at 16 in flight
# needs none; cyclic garbage waits for at most 10,000 objects.
GC_YOUNG = 10_000


def _warm_up(command: str | None) -> None:
    """What the console script does before `main` (its process is the tool's own): start
    the network import early, size the collector's young generation (`GC_YOUNG`), and skip
    pydantic's plugin discovery (a scan of every installed package's entry points, ~30 ms
    at each start) unless ``PYDANTIC_DISABLE_PLUGINS`` is set already."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    gc.set_threshold(GC_YOUNG)
    if command in _NETWORK:
        threading.Thread(target=_import, args=("aiohttp",), name="warm-up", daemon=True).start()


def _import(name: str) -> None:
    with contextlib.suppress(BaseException):  # the main thread's own import reports it
        importlib.import_module(name)


def entry() -> NoReturn:
    """The console script and ``python -m worker``: `main`, then leave at once.

    By the time `main` returns everything the tool wrote is on disk or in a pipe: the result
    log and the lock are raw descriptors written unbuffered, and stdout and stderr are flushed
    here. So the interpreter's teardown (finalizing some 500 modules: about 0.1 s, a tenth of
    a short cron run's whole time) is skipped with ``os._exit``. Should a flush fail (a
    closed pipe), Python's own exit reports it as usual. `main` itself returns normally, for
    callers in the same process (tests, the library). A standard descriptor closed at
    start (``>&-``) is put on ``/dev/null`` first (`worker.output.standard`).
    """
    from worker.output.standard import reopen_closed

    reopen_closed()
    _warm_up(sys.argv[1] if len(sys.argv) > 1 else None)
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    os._exit(code)


def _fatal(exc: Exception, command: str) -> int:
    from worker.errors import ReaderGone, WorkerError

    if not isinstance(exc, WorkerError):
        raise exc
    if isinstance(exc, ReaderGone):
        return exc.exit_code  # `| head -1` read what it wanted: nothing to say
    import structlog

    structlog.get_logger("worker.cli").error(
        f"{command}.aborted", error=str(exc), exit_code=exc.exit_code
    )
    return exc.exit_code


__all__ = ["EXIT_CODES", "build_parser", "entry", "main"]

if __name__ == "__main__":
    entry()
