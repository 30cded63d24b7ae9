"""The spec's operations on the in-memory population, once a request has been let through.

Unknown ids and ids of another organisation are 404 alike. DELETE answers null
``status_detail``, ``structured_output``, ``category`` and ``subcategory``, as the spec
says those are only filled on get/list. Archiving is never undone by a DELETE.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

from .population import TERMINATED_STATUSES, Session
from .queries import (
    QueryError,
    build_filters,
    decode_cursor,
    encode_cursor,
    parse_bool,
    parse_first,
    select,
)
from .responses import json_response
from .shared import Shared

_GET_ONLY_FIELDS = {
    "status_detail": None,
    "structured_output": None,
    "category": None,
    "subcategory": None,
}
_ARCHIVE_QUERIES = {"": False, "archive=false": False, "archive=true": True}
_NO_MANAGE = (
    "Service user lacks required permission: ManageOrgSessions is needed to terminate "
    "or archive sessions; grant it to the service user in Settings → Service Users"
)


class SessionHandlers:
    """DELETE/GET one session, GET the list, POST archive and GET /v3/self."""

    def __init__(self, shared: Shared, sessions: dict[str, Session]) -> None:
        self._shared = shared
        self._sessions = sessions
        self._archive_failures: Counter[str] = Counter()  # archive calls failed, by session
        # Newest first; the population never grows, so the order is computed once.
        self._ordered = sorted(
            sessions.values(), key=lambda s: (s["created_at"], s["session_id"]), reverse=True
        )

    async def terminate(self, request: web.Request, devin_id: str | None) -> web.Response:
        if (refused := self._refused(request, devin_id)) is not None:
            return refused
        # The queries every client sends are looked up as they are; others are parsed.
        archive = _ARCHIVE_QUERIES.get(request.rel_url.raw_query_string)
        if archive is None:
            try:
                archive = parse_bool("archive", request.query.get("archive", "false"))
            except QueryError as error:
                return self._invalid(error, request)
        session = self._find(request, devin_id)
        if session is None:
            return self._not_found(request)
        if session["status"] in TERMINATED_STATUSES:
            if self._shared.config.already_terminated == "409":
                detail = f"Session {devin_id} is already terminated (status {session['status']})"
                return self._shared.problems.problem(409, detail, request.path)
        else:
            session["status"] = "exit"
            session["status_detail"] = None
            self._shared.stats.terminated += 1
            self._touch(session)
        if archive and not self._unarchivable(session):
            self._set_archived(session)
        return json_response({**session, **_GET_ONLY_FIELDS})

    async def get_session(self, request: web.Request, devin_id: str | None) -> web.Response:
        session = self._find(request, devin_id)
        if session is None:
            return self._not_found(request)
        return json_response(session)

    async def list_sessions(self, request: web.Request, devin_id: str | None) -> web.Response:
        if request.match_info["org_id"] != self._shared.config.org_id:
            return self._shared.problems.problem(404, "Organization not found", request.path)
        query = request.query
        try:
            first = parse_first(query)
            offset = decode_cursor(query)
            matching = select(self._ordered, build_filters(query))
        except QueryError as error:
            return self._invalid(error, request)
        end = offset + first
        config = self._shared.config
        has_next = end < len(matching) or config.endless_empty_pages or config.cycling_cursors
        if config.cycling_cursors:
            end %= 2 * first  # A -> B -> A: the page after the second points at the first
        page: dict[str, Any] = {
            "items": matching[offset : offset + first],
            "end_cursor": encode_cursor(end) if has_next else None,
            "has_next_page": has_next,
            "total": len(matching),
        }
        return json_response(page)

    async def archive(self, request: web.Request, devin_id: str | None) -> web.Response:
        if (refused := self._refused(request, devin_id)) is not None:
            return refused
        session = self._find(request, devin_id)
        if session is None:
            return self._not_found(request)
        if self._unarchivable(session) and self._archive_fails(session["session_id"]):
            return self._shared.problems.problem(500, "Internal Server Error", request.path)
        if session["status"] in ("new", "claimed", "running", "resuming"):
            session["status"] = "suspended"  # archiving puts a running session to sleep
            session["status_detail"] = "user_request"
        self._set_archived(session)
        return json_response(session)

    async def get_self(self, request: web.Request, devin_id: str | None) -> web.Response:
        config = self._shared.config
        return json_response(
            {
                "principal_type": "service_user",
                "service_user_id": config.service_user_id,
                "service_user_name": config.service_user_name,
                "org_id": config.org_id,
            }
        )

    def _refused(self, request: web.Request, devin_id: str | None) -> web.Response | None:
        """The 403 of a DELETE or an archive the token may not send, else None."""
        config = self._shared.config
        if config.lacks_manage_permission:
            return self._shared.problems.problem(403, _NO_MANAGE, request.path)
        if devin_id is not None and config.picked(config.forbidden_share, devin_id, "forbid"):
            detail = (
                f"Forbidden: the service user lacks permission to manage session {devin_id} "
                "(it belongs to a user the service user may not act for)"
            )
            return self._shared.problems.problem(403, detail, request.path)
        return None

    def _unarchivable(self, session: Session) -> bool:
        config = self._shared.config
        return config.picked(config.archive_fail_share, session["session_id"], "archive")

    def _archive_fails(self, session_id: str) -> bool:
        """This archive call of an unarchivable session fails (its first ``times``)."""
        times = self._shared.config.archive_fail_times
        self._archive_failures[session_id] += 1
        return times is None or self._archive_failures[session_id] <= times

    def _find(self, request: web.Request, devin_id: str | None) -> Session | None:
        if request.match_info["org_id"] != self._shared.config.org_id or devin_id is None:
            return None
        return self._sessions.get(devin_id)

    def _set_archived(self, session: Session) -> None:
        if not session["is_archived"]:
            session["is_archived"] = True
            self._shared.stats.archived += 1
            self._touch(session)

    def _touch(self, session: Session) -> None:
        session["updated_at"] = max(session["updated_at"], int(self._shared.now()))

    def _not_found(self, request: web.Request) -> web.Response:
        return self._shared.problems.problem(404, "Session not found", request.path)

    def _invalid(self, error: QueryError, request: web.Request) -> web.Response:
        return self._shared.problems.validation(error.loc, error.msg, error.kind, request.path)
