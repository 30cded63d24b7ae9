"""Diagnostics on stderr through structlog: readable on a terminal, one JSON object a line
otherwise. The result log is data and does not go through here.

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
import structlog
from structlog.tracebacks import ExceptionDictTransformer

from worker.output import redact

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
    """Set up structlog (and stdlib logging of aiohttp/asyncio) to write to ``stream``."""
    redact.guard_standard_streams()
    stream = redact.guard(stream or sys.stderr)
    REDACTOR.add(secret)
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]
    if console:
        renderer: list[Any] = [
            structlog.processors.format_exc_info,
            REDACTOR,
            structlog.dev.ConsoleRenderer(
                colors=_colors(stream), exception_formatter=structlog.dev.plain_traceback
            ),
        ]
    else:
        renderer = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            REDACTOR,
            structlog.processors.JSONRenderer(
                serializer=lambda obj, **_: orjson.dumps(obj, default=str).decode()
            ),
        ]
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=stream, force=True)
    logging.getLogger().handlers[0].addFilter(_scrub_record)


def _colors(stream: TextIO) -> bool:
    import os

    return stream.isatty() and "NO_COLOR" not in os.environ


def _scrub_record(record: logging.LogRecord) -> bool:
    record.msg = REDACTOR.scrub(record.getMessage())
    record.args = None
    return True
