"""A short human reason for an error body, one line, whatever the server sent.

The API's own bodies (RFC 9457 ProblemDetail, FastAPI's older HTTPValidationError, models
in `worker.devin.models`) give their text; gateways and proxies send JSON with a ``message``,
HTML pages or plain text, and those are read too. The reason ends up in records and logs,
so it is flattened to one printable line and cut to a length.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from worker.devin.models import ProblemDetail


def describe_error(body: bytes, limit: int = 200) -> str:
    """A short human reason for an error body, one line.

    ProblemDetail and FastAPI's HTTPValidationError give their text; a JSON ``message`` or
    ``error`` string (API gateways) is taken as is; an HTML page gives its ``<title>`` (or
    ``<h1>``) without a repeated status code; short plain text is kept. Anything else
    (truncated or foreign JSON, binary) is ``unreadable body``: never raw JSON that could
    read like an answer.
    """
    page = _html_heading(body)
    if page is not None:
        return _printable(page, limit)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _plain(body, limit)
    text = _json_text(data) if isinstance(data, dict) else None
    return _printable(text, limit) if text else UNREADABLE


UNREADABLE = "unreadable body"
_HEADING = re.compile(rb"<(title|h1)[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]*>")
_STATUS_PREFIX = re.compile(r"^\s*\d{3}\s*[-:]?\s*")


def _html_heading(body: bytes) -> str | None:
    """The title (else first h1) of an HTML page, or None when ``body`` is no HTML page."""
    head = body[:512].lstrip().lower()
    if not head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<h1")):
        return None
    import html  # only for an HTML page: not at start-up

    for match in _HEADING.finditer(body[:20000]):
        raw = match.group(2).decode("utf-8", errors="replace")
        text = _STATUS_PREFIX.sub("", html.unescape(_TAGS.sub(" ", raw))).strip()
        if text:
            return text
    return "HTML page"


def _plain(body: bytes, limit: int) -> str:
    """Short printable text (``upstream connect error``) is kept; anything else is not."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return UNREADABLE
    if not text:
        return "empty body"
    if text[0] in '{["' or not all(line.isprintable() for line in text.splitlines()):
        return UNREADABLE
    return _printable(text, min(limit, 120))


def _json_text(data: dict[str, Any]) -> str | None:
    if {"title", "detail", "errors"} & data.keys():
        # the models (pydantic) only for the API's own error bodies: not at start-up
        from pydantic import ValidationError

        from worker.devin.models import HTTPValidationError, ProblemDetail

        if isinstance(data.get("detail"), list) and "title" not in data:
            try:
                legacy = HTTPValidationError.model_validate(data)
            except ValidationError:
                return None
            return "; ".join(_validation_item(item) for item in legacy.detail) or None
        try:
            return _problem_text(ProblemDetail.model_validate(data))
        except ValidationError:
            return None
    for key in ("message", "error", "error_description"):
        if isinstance(data.get(key), str) and data[key].strip():
            return str(data[key])
    return None


def _problem_text(problem: ProblemDetail) -> str:
    detail = problem.detail
    if isinstance(detail, list):
        parts = [_validation_item(item) for item in detail]
        detail = "; ".join(part for part in parts if part)
    pieces = [piece for piece in (problem.title, detail) if piece]
    return ": ".join(pieces) if pieces else "error without detail"


def _validation_item(item: Any) -> str:
    if hasattr(item, "model_dump"):  # a ValidationErrorItem
        item = item.model_dump()
    if not isinstance(item, dict):
        return str(item)
    loc = ".".join(str(part) for part in item.get("loc", []))
    msg = str(item.get("msg", ""))
    return f"{loc}: {msg}" if loc else msg


def _printable(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
