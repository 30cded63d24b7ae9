"""argparse as the CLI uses it: no prefix matching, errors in the words of the subcommand
that failed, with a "did you mean" when a flag, command or value is close to a known one."""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from worker import _table
from worker._names import env_name, flag_name

if TYPE_CHECKING:
    from worker.settings import Settings

_UNKNOWN = re.compile(r"unrecognized arguments: (.+)$")
_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.+)\)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean --dry-run?)`` when ``word`` is close to one of ``known``, else ``""``."""
    import difflib  # only for a mistake: not at start-up

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class Parser(argparse.ArgumentParser):
    """No abbreviations (``--dry`` is not ``--dry-run``: scripts must not break when a flag
    is added); unknown arguments are reported by the subcommand's own parser, with its usage
    and a suggestion."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self._is_command():
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def _is_command(self) -> bool:
        return not any(isinstance(a, argparse._SubParsersAction) for a in self._actions)

    def error(self, message: str) -> NoReturn:
        super().error(message + self._suggestion(message))

    def _suggestion(self, message: str) -> str:
        unknown = _UNKNOWN.search(message)
        if unknown:
            first = unknown.group(1).split()[0].split("=")[0]
            return did_you_mean(first, self._option_string_actions)
        choice = _CHOICE.search(message)
        if choice:
            options = [part.strip().strip("'") for part in choice.group(2).split(",")]
            return did_you_mean(choice.group(1), options)
        return ""


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q`` (warnings and errors only) and ``-v`` (debug: every retry); --log-level wins."""
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings, errors and what needs a person"
    )
    loud.add_argument("-v", "--verbose", action="store_true", help="debug lines, every retry")


def log_level_of(args: argparse.Namespace) -> str | None:
    """``--log-level``, else ``warning`` for ``-q`` and ``debug`` for ``-v``; None: not given."""
    level: str | None = getattr(args, "log_level", None)
    if level is None and getattr(args, "quiet", False):
        return "warning"
    if level is None and getattr(args, "verbose", False):
        return "debug"
    return level


def parse_duration(text: str) -> float:
    """Seconds in ``90m``, ``1h``, ``7d``, ``2w`` (also ``s``); argparse type."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90m, 12h, 7d or 2w")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_time(text: str, now: Callable[[], float] = time.time) -> int:
    """Unix seconds from ``1714560000``, ``2024-05-01``, ``2024-05-01T12:00:00Z`` (UTC if
    no offset) or a duration back from now (``30m``, ``12h``, ``7d``, ``2w``); argparse type."""
    if text.strip().isdigit():
        return int(text)
    if _DURATION.match(text):
        return int(now() - parse_duration(text))
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither unix seconds, an ISO date such as 2024-05-01T12:00:00Z, "
            "nor a duration back from now such as 30m, 12h or 7d"
        ) from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


EXIT_CODES = """exit codes:
  0    every id reached a final state (terminated, archived, already_terminated, not_found, skipped)
  1    finished, but some sessions failed or input lines were invalid
  2    usage, configuration or input error; nothing was sent
  3    aborted: the token was refused (401/403), the failure breaker tripped,
       or the API kept throttling
  4    another run holds the lock
  130  interrupted by SIGINT, 143 by SIGTERM, 129 by SIGHUP (after draining)"""
CONNECTION = (
    "org_id",
    "base_url",
    "token_file",
    "ca_bundle",
    "proxy",
    "timeout",
    "log_format",
    "log_level",
)
_SHORT = {"dry_run": "-n", "yes": "-y"}


def add_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """``--config``, a flag per setting of ``names`` (all by default), ``-q``/``-v``: names,
    help, env variable and default all come from the one table (``worker._table``)."""
    parser.add_argument(
        "--config", metavar="PATH", help="TOML file of settings (`config --example` prints one)"
    )
    wanted = None if names is None else set(names)
    for row in _table.ROWS:
        if wanted is None or row.name in wanted:
            flags = [_SHORT[row.name]] if row.name in _SHORT else []
            help_text = f"{_table.help_text(row)} [env {env_name(row.name)}]"
            parser.add_argument(
                *flags, flag_name(row.name), dest=row.name, help=help_text, **_flag_options(row)
            )
    add_verbosity(parser)


def _flag_options(row: _table.Row) -> dict[str, Any]:
    options: dict[str, Any] = {"default": None}
    if row.switch:
        options["action"] = "store_true"
    elif isinstance(row.default, bool):
        options["action"] = argparse.BooleanOptionalAction
    elif row.choices:
        options["choices"] = list(row.choices)
    elif row.kind is not None or type(row.default) in (int, float):
        options["type"] = row.kind or type(row.default)
    if row.many:
        options["action"] = "append"
    if row.metavar:
        options["metavar"] = row.metavar
    return options


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings of a command's flags (over env, config file, defaults), with logging
    configured by them."""
    from worker.output.logs import configure_logging
    from worker.settings import load_settings

    flags = {row.name: getattr(args, row.name, None) for row in _table.ROWS}
    flags["log_level"] = log_level_of(args)
    configure_logging()  # until the settings say otherwise, so config errors are rendered
    settings = load_settings(flags, config=args.config)
    _check_network(settings)
    secret = settings.token.get_secret_value() if settings.token else None
    configure_logging(level=settings.log_level, fmt=settings.log_format, secret=secret)
    return settings


def _check_network(settings: Settings) -> None:
    """A proxy URL or CA bundle that cannot work: exit 2 now (ssl is imported only then).
    Plain http (loopback) goes through neither."""
    if not settings.base_url.startswith("https://"):
        return
    proxied = any(key.lower() == "https_proxy" for key in os.environ)
    if settings.proxy or settings.ca_bundle or proxied or os.environ.get("SSL_CERT_FILE"):
        from worker.devin.network import check_network

        ca_bundle = str(settings.ca_bundle) if settings.ca_bundle else None
        check_network(settings.base_url, settings.proxy, ca_bundle)
