"""The command line. Only wiring: parse, build settings, configure logging, run, map the
outcome to an exit code. Heavy modules are imported inside the commands so that ``--help``
answers at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from worker._names import TOKEN_ENV, env_name, flag_name
from worker._version import __version__
from worker.commands.options import add_verbosity

# (setting, argparse keyword arguments, help). Each is also a TOML key and an env variable.
_RUN_FLAGS: list[tuple[str, dict[str, Any], str]] = [
    ("org_id", {"metavar": "ORG"}, "organization id, org-... (required)"),
    (
        "base_url",
        {"metavar": "URL"},
        "API base URL (default https://api.devin.ai; http only to loopback)",
    ),
    ("token_file", {"metavar": "PATH"}, f"read the token from this file instead of {TOKEN_ENV}"),
    (
        "ca_bundle",
        {"metavar": "PATH"},
        "CA bundle for a private deployment's TLS (TLS is always verified)",
    ),
    (
        "archive",
        {"action": argparse.BooleanOptionalAction},
        "archive each session as it is terminated (default: no)",
    ),
    ("concurrency", {"type": int, "metavar": "N"}, "requests in flight at most (default 8)"),
    (
        "rate",
        {"type": float, "metavar": "R"},
        "requests per second ceiling, every attempt counted; 0 = none (default 20)",
    ),
    ("burst", {"type": int, "metavar": "B"}, "requests granted at once at most (default rate/20)"),
    (
        "adaptive",
        {"action": argparse.BooleanOptionalAction},
        "lower the rate on 429 and raise it back (default on)",
    ),
    (
        "max_attempts",
        {"type": int, "metavar": "N"},
        "attempts per session, first included (default 6)",
    ),
    ("timeout", {"type": float, "metavar": "S"}, "seconds per request (default 30)"),
    (
        "backoff_base",
        {"type": float, "metavar": "S"},
        "first backoff ceiling in seconds; doubles per retry (default 0.1)",
    ),
    ("backoff_max", {"type": float, "metavar": "S"}, "backoff ceiling in seconds (default 5)"),
    (
        "retry_after_max",
        {"type": float, "metavar": "S"},
        "longest Retry-After waited for, seconds; a longer one fails the session (default 120)",
    ),
    (
        "retry_budget",
        {"type": int, "metavar": "N"},
        "retry tokens for the whole run, 5 per retry (default 500)",
    ),
    (
        "session_timeout",
        {"type": float, "metavar": "S"},
        "seconds one session may take, attempts and waits included (default 120)",
    ),
    (
        "throttle_timeout",
        {"type": float, "metavar": "S"},
        "seconds of nothing but 429 answers that end the run, exit 3 (default 60)",
    ),
    (
        "breaker_window",
        {"type": int, "metavar": "N"},
        "sessions the failure breaker looks back on (default 50)",
    ),
    (
        "breaker_threshold",
        {"type": float, "metavar": "F"},
        "failed share of that window that aborts the run (default 0.8)",
    ),
    (
        "drain_timeout",
        {"type": float, "metavar": "S"},
        "seconds in-flight requests get after SIGINT/SIGTERM (default 10)",
    ),
    ("results", {"metavar": "PATH"}, "result log, JSONL, appended (default results.jsonl)"),
    (
        "resume",
        {"action": argparse.BooleanOptionalAction},
        "skip ids already settled in the result log (default on); "
        "--no-resume moves the old log aside and starts afresh",
    ),
    (
        "dry_run",
        {"action": "store_true", "default": None},
        "look every session up (GET), send no DELETE",
    ),
    (
        "max_sessions",
        {"type": int, "metavar": "N"},
        "refuse inputs holding more distinct ids than N (nothing is sent)",
    ),
    (
        "limit",
        {"type": int, "metavar": "N"},
        "take at most N new sessions this run; the rest are counted as deferred (exit 0)",
    ),
    ("yes", {"action": "store_true", "default": None}, "do not ask for confirmation on a terminal"),
    (
        "column",
        {"metavar": "NAME"},
        "CSV column holding the ids (default a session_id, Session ID, devin_id or id "
        "header, else the only column holding ids)",
    ),
    (
        "outcome",
        {"action": "append", "metavar": "OUTCOME"},
        "a result log as INPUT: take the ids of records of this outcome (repeatable; "
        "default failed, cancelled, would_terminate)",
    ),
    ("lock", {"metavar": "PATH"}, "lock file (default RESULTS.lock): one run at a time"),
    (
        "log_format",
        {"choices": ["auto", "console", "json"]},
        "diagnostics on stderr: plain lines (auto, console) or JSON lines (json)",
    ),
    (
        "log_level",
        {"choices": ["debug", "info", "warning", "error"]},
        "diagnostics level (default info)",
    ),
    (
        "progress",
        {"choices": ["auto", "on", "off"]},
        "progress bar on a TTY, JSON lines otherwise (default auto)",
    ),
    (
        "progress_interval",
        {"type": float, "metavar": "S"},
        "seconds between progress lines without a terminal (default 30 in JSON, 300 in text)",
    ),
]
_CONNECTION = (
    "org_id",
    "base_url",
    "token_file",
    "ca_bundle",
    "timeout",
    "log_format",
    "log_level",
)

_SHORT = {"dry_run": "-n", "yes": "-y"}
_EXIT_CODES = """exit codes:
  0    every id reached a final state (terminated, archived, already_terminated, not_found, skipped)
  1    finished, but some sessions failed or input lines were invalid
  2    usage, configuration or input error; nothing was sent
  3    aborted: the token was refused (401/403), the failure breaker tripped,
       or the API kept throttling
  4    another run holds the lock
  130  interrupted by SIGINT, 143 by SIGTERM (after draining)"""


def _add_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="TOML file of settings (`config --example` prints one)"
    )
    for name, kwargs, text in _RUN_FLAGS:
        if names is not None and name not in names:
            continue
        options = {"default": None, **kwargs}
        flags = [_SHORT[name]] if name in _SHORT else []
        parser.add_argument(
            *flags, flag_name(name), dest=name, help=f"{text} [env {env_name(name)}]", **options
        )
    add_verbosity(parser)


def build_parser() -> argparse.ArgumentParser:
    from worker.commands.options import Parser

    parser = Parser(
        prog="devin-terminate",
        description="Terminate Devin sessions in bulk through the Devin API v3, with a result log.",
        epilog=f"The token comes from {TOKEN_ENV} or --token-file, never from a flag.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )
    run = commands.add_parser(
        "run",
        help="terminate the sessions listed in INPUT files ('-' or none: stdin)",
        description="Terminate the sessions listed in INPUT (.csv, .txt, .jsonl; '-'/none: stdin).",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="files of session ids; '-' for stdin"
    )
    _add_flags(run)
    demo = commands.add_parser("demo", help="run the whole job against the built-in simulator")
    demo.add_argument("--sessions", type=int, default=300, help="simulated sessions (default 300)")
    demo.add_argument(
        "--dir", default="demo-output", help="where to write the input and result log"
    )
    _add_tools(commands)
    return parser


def _add_tools(commands: Any) -> None:
    from worker.commands import compact, config, report
    from worker.commands.listing import add_list_arguments
    from worker.simulator.command import configure_parser

    listing = commands.add_parser(
        "list",
        help="print matching session ids as CSV (pipe into `run -`)",
        description="Print the organization's sessions that match every filter, as CSV on stdout.",
    )
    _add_flags(listing, _CONNECTION)
    add_list_arguments(listing)
    report.configure_parser(
        commands.add_parser("report", help=report.HELP, description=report.HELP)
    )
    compact.configure_parser(
        commands.add_parser("compact", help=compact.HELP, description=compact.HELP)
    )
    config.configure_parser(
        commands.add_parser("config", help=config.HELP, description=config.HELP)
    )
    simulate = commands.add_parser(
        "simulate", help="serve the built-in Devin API simulator on loopback"
    )
    configure_parser(simulate)
    _add_fleet_commands(commands)


def _add_fleet_commands(commands: Any) -> None:
    """The queue on Redis (extra ``devin-terminate[redis]``): enqueue, work, report --redis."""
    from worker.fleet.options import add_connection_arguments, add_work_arguments

    enqueue = commands.add_parser(
        "enqueue",
        help="put validated session ids on a Redis stream for `work` ('-' reads stdin)",
        description="Validate the ids of INPUT (.csv, .txt, .jsonl; '-': stdin) and put them "
        "on the queue. Invalid lines are reported with file:line and not enqueued.",
    )
    enqueue.add_argument("inputs", nargs="*", metavar="INPUT", help="files of session ids")
    add_connection_arguments(enqueue)
    _add_flags(enqueue, ("column", "log_format", "log_level"))
    work = commands.add_parser(
        "work",
        help="drain the Redis queue as one worker of a fleet, under one org-wide rate limit",
        description="Terminate the sessions queued with `enqueue`, with any number of workers "
        "on any number of machines sharing one queue and one rate limit.",
        epilog=_EXIT_CODES + "\n  3    also: Redis stayed unreachable past --redis-timeout",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_work_arguments(work)
    _add_flags(
        work,
        [
            n
            for n, _, _ in _RUN_FLAGS
            if n not in ("resume", "max_sessions", "yes", "column", "dry_run")
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from worker.output.logs import configure_logging

    configure_logging()  # plain lines on stderr until a command's settings say otherwise
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _fatal(exc, args.command)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        return _run(args)
    if args.command == "list":
        from worker.commands.listing import list_command

        return list_command(args)
    if args.command == "demo":
        from worker.commands.demo import run_demo

        return run_demo(sessions=args.sessions, directory=args.dir)
    if args.command == "simulate":
        from worker.simulator.command import main as simulate

        return simulate(args)
    if args.command in ("enqueue", "work"):
        return _fleet_command(args)
    from worker.commands import compact, config, report

    tools = {"report": report.main, "compact": compact.main, "config": config.main}
    return tools[args.command](args)


def _fleet_command(args: argparse.Namespace) -> int:
    if args.command == "enqueue":
        from worker.commands.enqueue import main as enqueue

        return enqueue(args)
    from worker.commands.work import main as work

    return work(args)


def _fatal(exc: Exception, command: str) -> int:
    from worker.errors import WorkerError

    if not isinstance(exc, WorkerError):
        raise exc
    import structlog

    structlog.get_logger("worker.cli").error(
        f"{command}.aborted", error=str(exc), exit_code=exc.exit_code
    )
    return exc.exit_code


def settings_from(args: argparse.Namespace) -> Any:
    from worker.output.logs import configure_logging
    from worker.settings import load_settings

    flags = {name: getattr(args, name, None) for name, _, _ in _RUN_FLAGS}
    if flags.get("log_level") is None and getattr(args, "quiet", False):
        flags["log_level"] = "warning"
    if flags.get("log_level") is None and getattr(args, "verbose", False):
        flags["log_level"] = "debug"
    configure_logging()  # until the settings say otherwise, so config errors are rendered
    settings = load_settings(flags, config=args.config)
    secret = settings.token.get_secret_value() if settings.token else None
    configure_logging(level=settings.log_level, fmt=settings.log_format, secret=secret)
    return settings


def _run(args: argparse.Namespace) -> int:
    from worker.output.progress import confirm_on_terminal, progress_for
    from worker.output.summary import print_summary
    from worker.run.job import run_job

    settings = settings_from(args)
    with progress_for(settings) as tally:
        report = run_job(settings, args.inputs, confirm=confirm_on_terminal, tally=tally)
    print_summary(report, settings)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
