"""The published schema of the result log: the four kinds of record, one JSON object a line.

``worker.output.results`` writes them (straight from memory, not through these models);
tests and readers validate against them. Unknown fields are allowed: a newer writer may add
some, an older reader keeps working."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from worker.outcomes import Outcome

__all__ = ["RunFinished", "RunStarted", "SessionRecord", "SessionSending"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")
    run_id: str
    ts: str


class RunStarted(_Record):
    event: Literal["run.started"]
    version: str
    org_id: str | None
    base_url: str | None = None  # absent in logs written before 0.2
    principal: str | None = None  # the token's service user id (GET /v3/self), when known
    archive: bool
    dry_run: bool
    settings: dict[str, Any]
    inputs: list[str]


class SessionRecord(_Record):
    event: Literal["session.result"]
    session_id: str | None
    outcome: Outcome
    archived: bool | None
    status: str | None
    http_status: int | None
    attempts: int
    elapsed_ms: float
    error: str | None
    source: str | None


class SessionSending(_Record):
    event: Literal["session.sending"]
    session_id: str


class RunFinished(_Record):
    event: Literal["run.finished"]
    counts: dict[str, int]
    elapsed_s: float
    exit_code: int
    interrupted: bool
