"""Pydantic models of what the Devin API v3 answers, tolerant of what it may add later.

Unknown fields are ignored and every enum is open: a known value becomes the enum member,
an unknown one stays a plain string (``union_mode="left_to_right"`` keeps known values as
members; pydantic's default smart union would turn every value into ``str``).
"""

from __future__ import annotations

import html
import re
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SessionStatus(StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    RUNNING = "running"
    EXIT = "exit"
    ERROR = "error"
    SUSPENDED = "suspended"
    RESUMING = "resuming"


class Origin(StrEnum):
    WEBAPP = "webapp"
    SLACK = "slack"
    TEAMS = "teams"
    API = "api"
    LINEAR = "linear"
    JIRA = "jira"
    AUTOMATION = "automation"
    CLI = "cli"
    DESKTOP = "desktop"
    CODE_SCAN = "code_scan"
    OTHER = "other"


TERMINAL_STATUSES = frozenset({"exit", "error"})


def _open_enum(enum: type[StrEnum]) -> Any:
    """An enum field that keeps unknown values as plain strings."""
    return Annotated[enum | str, Field(union_mode="left_to_right")]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PullRequest(_Tolerant):
    pr_url: str
    pr_state: str | None = None


class SessionResponse(_Tolerant):
    """A session as the API describes it (``SessionResponse`` in the spec)."""

    session_id: str
    status: _open_enum(SessionStatus)  # type: ignore[valid-type]
    url: str | None = None
    org_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    created_at: int | None = None
    updated_at: int | None = None
    acus_consumed: float | None = None
    pull_requests: list[PullRequest] = Field(default_factory=list)
    is_archived: bool = False
    status_detail: str | None = None
    origin: _open_enum(Origin) | None = None  # type: ignore[valid-type]
    category: str | None = None
    subcategory: str | None = None
    title: str | None = None
    user_id: str | None = None
    service_user_id: str | None = None
    playbook_id: str | None = None
    parent_session_id: str | None = None
    child_session_ids: list[str] | None = None
    structured_output: dict[str, Any] | None = None
    automation_id: str | None = None
    devin_mode: str | None = None

    @property
    def is_terminal(self) -> bool:
        return str(self.status) in TERMINAL_STATUSES


class SessionState(_Tolerant):
    """The three fields a terminate needs from a session answer: parsed on every 200, so
    cheaper than the whole ``SessionResponse`` (which listing uses)."""

    session_id: str
    status: _open_enum(SessionStatus)  # type: ignore[valid-type]
    is_archived: bool = False

    @property
    def is_terminal(self) -> bool:
        return str(self.status) in TERMINAL_STATUSES


class SessionPage(_Tolerant):
    """One page of ``GET /v3/organizations/{org_id}/sessions``."""

    items: list[SessionResponse]
    end_cursor: str | None = None
    has_next_page: bool = False
    total: int | None = None


class ServiceUserSelf(_Tolerant):
    principal_type: str
    service_user_id: str
    service_user_name: str
    org_id: str | None = None


class ProblemDetail(_Tolerant):
    """RFC 9457 error body; ``detail`` may also be FastAPI's list of validation errors."""

    type: str = "about:blank"
    title: str | None = None
    status: int | None = None
    detail: str | list[Any] | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ValidationErrorItem(_Tolerant):
    loc: list[str | int] = Field(default_factory=list)
    msg: str = ""
    type: str = ""


class HTTPValidationError(_Tolerant):
    """FastAPI's 422 body of the older spec: ``detail`` is a list of validation errors."""

    detail: list[ValidationErrorItem]


def parse_session(body: bytes) -> SessionResponse | None:
    """The session in a 200 body, or None when the body is not a session."""
    try:
        return SessionResponse.model_validate_json(body)
    except ValidationError:
        return None


def parse_state(body: bytes) -> SessionState | None:
    """The state of the session in a 200 body, or None when the body is not a session."""
    try:
        return SessionState.model_validate_json(body)
    except ValidationError:
        return None


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
    if isinstance(item, ValidationErrorItem):
        item = item.model_dump()
    if not isinstance(item, dict):
        return str(item)
    loc = ".".join(str(part) for part in item.get("loc", []))
    msg = str(item.get("msg", ""))
    return f"{loc}: {msg}" if loc else msg


def _printable(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
