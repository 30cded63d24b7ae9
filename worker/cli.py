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
        "longest Retry-After honoured, seconds (default 120)",
    ),
    (
        "retry_budget",
        {"type": int, "metavar": "N"},
        "retry tokens for the whole run, 5 per retry (default 500)",
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
        "refuse inputs holding more distinct ids than N",
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
        "diagnostics on stderr (default auto: console on a TTY)",
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
        "seconds between JSON progress lines (default 30)",
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

_EXIT_CODES = """exit codes:
  0    every id reached a final state (terminated, archived, already_terminated, not_found, skipped)
  1    finished, but some sessions failed or input lines were invalid
  2    usage, configuration or input error; nothing was sent
  3    aborted: the token was refused (401/403) or the failure breaker tripped
  4    another run holds the lock
  130  interrupted by SIGINT, 143 by SIGTERM (after draining)"""


def _add_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    parser.add_argument(
        "--config", metavar="PATH", help="TOML file of settings (see config/example.toml)"
    )
    for name, kwargs, text in _RUN_FLAGS:
        if names is not None and name not in names:
            continue
        options = {"default": None, **kwargs}
        parser.add_argument(
            flag_name(name), dest=name, help=f"{text} [env {env_name(name)}]", **options
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devin-terminate",
        description="Terminate Devin sessions in bulk through the Devin API v3, with a result log.",
        epilog=f"The token comes from {TOKEN_ENV} or --token-file, never from a flag.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
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
    listing = commands.add_parser(
        "list",
        help="print matching session ids as CSV (pipe into `run -`)",
        description="Print the organization's sessions that match every filter, as CSV on stdout.",
    )
    _add_flags(listing, _CONNECTION)
    from worker.listing import add_list_arguments

    add_list_arguments(listing)
    simulate = commands.add_parser(
        "simulate", help="serve the built-in Devin API simulator on loopback"
    )
    from worker.simulator.command import configure_parser

    configure_parser(simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "list":
            from worker.listing import list_command

            return list_command(args)
        if args.command == "demo":
            from worker.demo import run_demo

            return run_demo(sessions=args.sessions, directory=args.dir)
        if args.command == "simulate":
            from worker.simulator.command import main as simulate

            return simulate(args)
        raise AssertionError(f"unknown command {args.command}")
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _fatal(exc)


def _fatal(exc: Exception) -> int:
    from worker.errors import WorkerError

    if not isinstance(exc, WorkerError):
        raise exc
    import structlog

    structlog.get_logger("worker.cli").error("run.aborted", error=str(exc), exit_code=exc.exit_code)
    return exc.exit_code


def settings_from(args: argparse.Namespace) -> Any:
    from worker.logs import configure_logging
    from worker.settings import load_settings

    flags = {name: getattr(args, name, None) for name, _, _ in _RUN_FLAGS}
    configure_logging()  # until the settings say otherwise, so config errors are rendered
    settings = load_settings(flags, config=args.config)
    secret = settings.token.get_secret_value() if settings.token else None
    configure_logging(level=settings.log_level, fmt=settings.log_format, secret=secret)
    return settings


def _run(args: argparse.Namespace) -> int:
    from worker.job import run_job
    from worker.progress import confirm_on_terminal, print_summary, progress_for

    settings = settings_from(args)
    with progress_for(settings) as tally:
        report = run_job(settings, args.inputs, confirm=confirm_on_terminal, tally=tally)
    print_summary(report, settings)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
