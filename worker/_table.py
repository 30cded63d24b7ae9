"""The one table of settings: for each, its default, help text and metavar. ``Settings``
takes its defaults from here, the CLI its flags and help, and every name maps to a TOML key,
a flag and an env variable (``worker._names``). Import-light, so ``--help`` stays fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker._names import TOKEN_ENV


@dataclass(frozen=True)
class Row:
    name: str
    default: Any
    help: str
    metavar: str | None = None
    kind: type | None = None  # the flag's type when the default (None) does not tell it
    choices: tuple[str, ...] = ()
    shown: str | None = None  # the default in words; "" when the help says it already
    switch: bool = False  # a bare flag (store_true), no --no- form
    many: bool = False  # repeatable (append)


def _r(name: str, default: Any, text: str, **more: Any) -> Row:
    return Row(name, default, text, **more)


_LOGS = ("auto", "console", "json")
_LEVELS = ("debug", "info", "warning", "error")
_S = {"kind": float, "metavar": "S"}
_N = {"kind": int, "metavar": "N"}

ROWS: tuple[Row, ...] = (
    _r("org_id", None, "organization id, org-... (required)", metavar="ORG", shown=""),
    _r("base_url", "https://api.devin.ai", "API base URL (http only to loopback)", metavar="URL"),
    _r(
        "token_file",
        None,
        f"read the token from this file instead of {TOKEN_ENV}",
        metavar="PATH",
        shown="",
    ),
    _r(
        "ca_bundle",
        None,
        "CA bundle for a private deployment's TLS (TLS is always verified)",
        metavar="PATH",
        shown="",
    ),
    _r("archive", False, "archive each session as it is terminated"),
    _r("concurrency", 8, "requests in flight at most", **_N),
    _r(
        "rate",
        20.0,
        "requests per second ceiling, every attempt counted; 0 = none",
        kind=float,
        metavar="R",
    ),
    _r("burst", None, "requests granted at once at most", kind=int, metavar="B", shown="rate/20"),
    _r("adaptive", True, "lower the rate on 429 and raise it back"),
    _r("max_attempts", 6, "attempts per session, first included", **_N),
    _r("timeout", 30.0, "seconds per request", **_S),
    _r("backoff_base", 0.1, "first backoff ceiling in seconds; doubles per retry", **_S),
    _r("backoff_max", 5.0, "backoff ceiling in seconds", **_S),
    _r(
        "retry_after_max",
        120.0,
        "longest Retry-After waited for, seconds; a longer one fails the session",
        **_S,
    ),
    _r("retry_budget", 500, "retry tokens for the whole run, 5 per retry", **_N),
    _r("session_timeout", 120.0, "seconds one session may take, attempts and waits included", **_S),
    _r(
        "throttle_timeout",
        60.0,
        "seconds of nothing but 429 answers that end the run, exit 3",
        **_S,
    ),
    _r("breaker_window", 50, "sessions the failure breaker looks back on", **_N),
    _r(
        "breaker_threshold",
        0.8,
        "failed share of that window that aborts the run",
        kind=float,
        metavar="F",
    ),
    _r("drain_timeout", 10.0, "seconds in-flight requests get after SIGINT/SIGTERM", **_S),
    _r("results", Path("results.jsonl"), "result log, JSONL, appended", metavar="PATH"),
    _r(
        "resume",
        True,
        "skip ids already settled in the result log; "
        "--no-resume moves the old log aside and starts afresh",
    ),
    _r("dry_run", False, "look every session up (GET), send no DELETE", switch=True, shown=""),
    _r(
        "max_sessions",
        None,
        "refuse inputs holding more distinct ids than N (nothing is sent)",
        **_N,
        shown="",
    ),
    _r(
        "limit",
        None,
        "take at most N new sessions this run; the rest are counted as deferred (exit 0)",
        **_N,
        shown="",
    ),
    _r("yes", False, "do not ask for confirmation on a terminal", switch=True, shown=""),
    _r(
        "column",
        None,
        "CSV column holding the ids",
        metavar="NAME",
        shown="a session_id, Session ID, devin_id or id header, else the only column holding ids",
    ),
    _r(
        "outcome",
        None,
        "a result log as INPUT: take the ids of records of this outcome (repeatable)",
        metavar="OUTCOME",
        many=True,
        shown="failed, cancelled, would_terminate",
    ),
    _r("lock", None, "lock file: one run at a time", metavar="PATH", shown="RESULTS.lock"),
    _r(
        "log_format",
        "auto",
        "diagnostics on stderr: plain lines (auto, console) or JSON lines (json)",
        choices=_LOGS,
    ),
    _r("log_level", "info", "diagnostics level", choices=_LEVELS),
    _r(
        "progress",
        "auto",
        "progress bar on a TTY, JSON lines otherwise",
        choices=("auto", "on", "off"),
    ),
    _r(
        "progress_interval",
        None,
        "seconds between progress lines without a terminal",
        **_S,
        shown="30 in JSON, 300 in text",
    ),
)
BY_NAME = {row.name: row for row in ROWS}


def default(name: str) -> Any:
    return BY_NAME[name].default


def help_text(row: Row) -> str:
    shown = _words(row.default) if row.shown is None else row.shown
    return f"{row.help} (default {shown})" if shown else row.help


def _words(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
