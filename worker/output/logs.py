"""Diagnostics on stderr through structlog: plain lines a person reads (terminal, journal,
cron mail) by default, one JSON object a line with ``--log-format json``. Every finished
line leaves through `write_line`. The result log is data and does not go through here.

Secrets: the token is never put in an event in the first place (aiohttp errors are logged as
``str``, never ``repr``, tracebacks never render local variables). The redaction processor is
the backstop: it masks values under secret-looking keys, ``Bearer`` credentials and the live
token wherever it appears in an event.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson


def _import_structlog_without_rich() -> None:
    """structlog imports rich, when it is installed, for its ConsoleRenderer's tracebacks
    and the locals of its tracebacks. This tool renders its own lines (`PlainRenderer`) and
    never shows locals, and rich costs about 0.1 s of every start (a cron run, each fleet
    worker). So rich is hidden while structlog loads; it stays importable afterwards (the
    progress bar on a terminal uses it)."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` fails meanwhile
    try:
        import structlog.tracebacks  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()

import structlog  # noqa: E402
from structlog.tracebacks import ExceptionDictTransformer  # noqa: E402

from worker.output import redact  # noqa: E402

_SECRET_KEY = re.compile(r"(?i)authorization|token|secret|api[_-]?key|password|cookie")
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class Redactor:
    """structlog processor: mask secrets in every value of an event (strings, nested)."""

    def add(self, secret: str | None) -> None:
        redact.add_secret(secret)

    def scrub(self, text: str) -> str:
        return redact.scrub(text)

    def _clean(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            return (
                "[REDACTED]"
                if _SECRET_KEY.search(key) and key not in _SAFE_KEYS
                else self.scrub(value)
            )
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(key, v) for v in value]
        return value

    def __call__(
        self, logger: Any, name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return {key: self._clean(key, value) for key, value in event.items()}


_SAFE_KEYS = frozenset({"token_file"})
REDACTOR = Redactor()


def configure_logging(
    *,
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secret: str | None = None,
) -> None:
    """Set up structlog (and stdlib logging of aiohttp/asyncio) to write to ``stream``.

    ``json``: one JSON object a line, for machines. ``console`` and ``auto``: one plain line
    an event (``HH:MM:SS level event key=value ...``) for the person reading a terminal,
    a journal or cron mail; colour only on a terminal without ``NO_COLOR``.
    """
    redact.guard_standard_streams()
    # None: whatever (guarded) sys.stderr is when a line is written
    given = redact.guard(stream) if stream is not None else None
    stream = given or sys.stderr
    REDACTOR.add(secret)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]
    if fmt == "json":
        renderer: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            REDACTOR,
            structlog.processors.JSONRenderer(
                serializer=lambda obj, **_: orjson.dumps(obj, default=str).decode()
            ),
        ]
    else:
        renderer = [
            structlog.processors.format_exc_info,
            REDACTOR,
            PlainRenderer(colors=_colors(stream)),
        ]
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *_: LineLogger(given),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=stream, force=True)
    logging.getLogger().handlers[0].addFilter(_scrub_record)


def is_json(fmt: str) -> bool:
    """Whether diagnostics (and so the summary) are JSON lines."""
    return fmt == "json"


def write_line(stream: TextIO | None, line: str) -> None:
    """The one place a finished diagnostic line is written (one write, then flush);
    ``None`` is the current ``sys.stderr``."""
    out = stream or sys.stderr
    out.write(line + "\n")
    out.flush()


class LineLogger:
    """structlog's logger: hands each rendered event to `write_line`."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        write_line(self._stream, message)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


_BARE = re.compile(r"^[\w.:/@+,%=-]{1,200}$")
_LEVEL_COLOR = {"warning": "\x1b[33m", "error": "\x1b[31m", "critical": "\x1b[31m"}


class PlainRenderer:
    """``00:12:03 warning session.failed session_id=devin-1 reason="HTTP 502: Bad Gateway"``.

    One line per event whatever the values hold: a string with spaces, quotes, newlines or
    control characters is written as a JSON string, so no value can forge a line.
    """

    def __init__(self, *, colors: bool = False) -> None:
        self._colors = colors

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        ts = str(event.pop("ts", ""))[11:19]
        level = str(event.pop("level", ""))
        text = _value(event.pop("event", ""))
        exc = event.pop("exception", None)
        fields = " ".join(f"{key}={_value(value)}" for key, value in event.items())
        shown = (
            f"{_LEVEL_COLOR[level]}{level}\x1b[0m"
            if self._colors and level in _LEVEL_COLOR
            else level
        )
        line = " ".join(part for part in (ts, shown, text, fields) if part)
        return f"{line} exception={_value(exc)}" if exc else line


def _value(value: Any) -> str:
    """A bare word as is; anything else as JSON (quoted, escaped, on one line)."""
    if isinstance(value, str) and _BARE.match(value):
        return value
    return orjson.dumps(value, default=str).decode()


def _colors(stream: TextIO) -> bool:
    import os

    return stream.isatty() and "NO_COLOR" not in os.environ


def _scrub_record(record: logging.LogRecord) -> bool:
    record.msg = REDACTOR.scrub(record.getMessage())
    record.args = None
    return True
