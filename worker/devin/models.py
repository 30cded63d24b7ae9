"""Pydantic models of what the Devin API v3 answers, tolerant of what it may add later.

Unknown fields are ignored and every enum is open: a known value becomes the enum member,
an unknown one stays a plain string (``union_mode="left_to_right"`` keeps known values as
members; pydantic's default smart union would turn every value into ``str``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.outcomes import TERMINAL_STATUSES


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
