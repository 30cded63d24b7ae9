"""Answer bodies: JSON documents, RFC 9457 ProblemDetail errors, FastAPI's older 422.

Bodies are serialised with orjson and handed to aiohttp as bytes: no model layer on
the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

_BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_GATEWAY_TIMEOUT_TEXT = b"upstream request timeout"


def json_response(document: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(document), status=status, content_type=JSON)


class Problems:
    """Builds error answers in the configured content type (``mixed`` alternates)."""

    __slots__ = ("_content_type", "_legacy_422", "_turn")

    def __init__(self, content_type: str, legacy_422: bool) -> None:
        self._content_type = content_type
        self._legacy_422 = legacy_422
        self._turn = 0

    def _next_content_type(self) -> str:
        if self._content_type != "mixed":
            return self._content_type
        self._turn += 1
        return PROBLEM_JSON if self._turn % 2 else JSON

    def problem(
        self,
        status: int,
        detail: str | None,
        instance: str,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> web.Response:
        """A ProblemDetail answer: ``title`` is the status phrase, ``instance`` the path."""
        body = {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "instance": instance,
            "errors": errors,
        }
        return web.Response(
            body=orjson.dumps(body),
            status=status,
            content_type=self._next_content_type(),
            headers=headers,
        )

    def validation(self, loc: list[str | int], msg: str, kind: str, instance: str) -> web.Response:
        """A 422 for one bad request field: ProblemDetail, or HTTPValidationError if legacy."""
        error = {"loc": loc, "msg": msg, "type": kind}
        if self._legacy_422:
            return json_response({"detail": [error]}, status=422)
        return self.problem(422, f"{'.'.join(map(str, loc))}: {msg}", instance, errors=[error])


def gateway_response(status: int) -> web.Response:
    """What a proxy in front of the API says: an HTML 502 page or a plain-text 504."""
    if status == 502:
        return web.Response(body=_BAD_GATEWAY_HTML, status=502, content_type="text/html")
    return web.Response(body=_GATEWAY_TIMEOUT_TEXT, status=504, content_type="text/plain")
