"""The response parser: tolerant of what the API may add, never crashing on what it sends."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from worker.devin.error_text import describe_error
from worker.devin.models import Origin, SessionResponse, SessionStatus, parse_session
from worker.devin.state import parse_state

BASE: dict[str, Any] = {
    "session_id": "devin-abc",
    "url": "https://app.devin.ai/sessions/abc",
    "status": "running",
    "tags": [],
    "org_id": "org-x",
    "created_at": 1,
    "updated_at": 2,
    "acus_consumed": 0.5,
    "pull_requests": [],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_known_enum_values_become_members_unknown_stay_strings() -> None:
    known = SessionResponse.model_validate({**BASE, "origin": "slack"})
    assert known.status is SessionStatus.RUNNING and known.origin is Origin.SLACK
    odd = SessionResponse.model_validate(
        {
            **BASE,
            "status": "hibernating",
            "origin": "zapier",
            "status_detail": "dreaming",
            "devin_mode": "turbo",
            "category": "vibes",
            "brand_new": {"x": 1},
        }
    )
    assert (odd.status, odd.origin, odd.status_detail, odd.devin_mode) == (
        "hibernating",
        "zapier",
        "dreaming",
        "turbo",
    )
    assert not odd.is_terminal


def test_nullable_fields_accept_null() -> None:
    nulls = dict.fromkeys(
        (
            "status_detail",
            "structured_output",
            "category",
            "subcategory",
            "title",
            "user_id",
            "origin",
            "child_session_ids",
            "devin_mode",
        )
    )
    session = SessionResponse.model_validate({**BASE, **nulls, "status": "exit"})
    assert session.is_terminal and session.origin is None


def test_error_bodies_of_every_shape() -> None:
    problem = {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "already exited",
    }
    assert describe_error(orjson.dumps(problem)) == "Conflict: already exited"
    legacy = {"detail": [{"loc": ["query", "archive"], "msg": "not a boolean", "type": "bool"}]}
    assert describe_error(orjson.dumps(legacy)) == "query.archive: not a boolean"
    assert describe_error(b'{"detail": "Session not found"}') == "Session not found"
    assert describe_error(b"<html><h1>502 Bad Gateway</h1></html>") == "Bad Gateway"
    assert len(describe_error(b"x" * 5000)) == 120


NGINX = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (NGINX, "Gateway Time-out"),
        (b"<!DOCTYPE html><html><title>Service &amp; Co\nDown</title>", "Service & Co Down"),
        (b"<html><body>no heading</body></html>", "HTML page"),
        (b'{"session_id": "devin-abc", "stat', "unreadable body"),
        (b'{"session_id": "devin-abc", "status": 7}', "unreadable body"),
        (b"[1, 2]", "unreadable body"),
        (b"\xff\xfe\x00garbage", "unreadable body"),
        (b"ok\x00\x01", "unreadable body"),
        (b'{"message": "Internal server error"}', "Internal server error"),
        (b"upstream connect error", "upstream connect error"),
    ],
)
def test_reasons_are_short_and_human(body: bytes, reason: str) -> None:
    assert describe_error(body) == reason


@given(extra=st.dictionaries(st.text(max_size=10).map("x_".__add__), json_values, max_size=6))
def test_any_extra_fields_parse(extra: dict[str, Any]) -> None:
    body = orjson.dumps({**extra, **BASE})
    session = parse_session(body)
    assert session is not None and session.session_id == "devin-abc"


@given(body=st.binary(max_size=300) | json_values.map(orjson.dumps))
def test_parser_never_crashes(body: bytes) -> None:
    parse_session(body)
    text = describe_error(body)
    assert isinstance(text, str) and "\n" not in text


class _PydanticState(BaseModel):
    """What the session answer was read with before: the rules `parse_state` keeps."""

    model_config = ConfigDict(extra="ignore")
    session_id: str
    status: str
    is_archived: bool = False


_fields = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([0.0, 1.0, 0.5]),
    st.sampled_from(["yes", "NO", "On", "t", "F", "1", "0", "x", "", "exit"]),
    st.lists(st.integers(-5, 5), max_size=1),
)


@given(
    sid=_fields | st.just("devin-a"),
    status=_fields | st.sampled_from(["exit", "running", "hatching"]),
    archived=_fields,
    keep=st.sets(st.sampled_from(["session_id", "status", "is_archived"])),
)
def test_parse_state_reads_as_the_model_did(
    sid: object, status: object, archived: object, keep: set[str]
) -> None:
    doc = {"session_id": sid, "status": status, "is_archived": archived}
    body = orjson.dumps({k: v for k, v in doc.items() if k in keep})
    try:
        want = _PydanticState.model_validate_json(body)
    except ValidationError:
        assert parse_state(body) is None
        return
    got = parse_state(body)
    assert got is not None
    assert (got.session_id, got.status, got.is_archived) == (
        want.session_id,
        want.status,
        want.is_archived,
    )


_ARCHIVED = [True, False, 0, 1, 2, -1, 0.0, 1.0, 0.5, 2.0, None, [], {}, "x", ""]
_ARCHIVED += ["yes", "NO", "On", "off", "t", "F", "Y", "n", "1", "0", "true", "FALSE"]


@pytest.mark.parametrize("archived", [*_ARCHIVED, "absent"])
def test_parse_state_reads_is_archived_as_the_model_did(archived: object) -> None:
    doc: dict[str, object] = {"session_id": "devin-a", "status": "exit"}
    if archived != "absent":
        doc["is_archived"] = archived
    body = orjson.dumps(doc)
    try:
        want: bool | None = _PydanticState.model_validate_json(body).is_archived
    except ValidationError:
        want = None
    got = parse_state(body)
    assert (got.is_archived if got is not None else None) == want


@pytest.mark.parametrize("body", [b"", b"[]", b"nope", b'"devin-a"', b"{"])
def test_parse_state_of_what_is_no_session(body: bytes) -> None:
    assert parse_state(body) is None
