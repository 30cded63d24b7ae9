"""The three fields a terminate needs from a session answer, read on every 2xx.

A DELETE, GET or archive answer is a whole ``SessionResponse`` (``worker.devin.models``),
but a terminate needs only its id, status and archive flag: they are read here with one
``orjson.loads`` and a few checks, with the rules the pydantic model would apply (the id
and the status strings, any status accepted; ``is_archived`` absent is false, and a JSON
bool, 0 or 1, or pydantic's words for a bool) instead of building the model on every
answer. Anything else is not a session: None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from worker._checks import BOOL_WORDS
from worker.outcomes import TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class SessionState:
    session_id: str
    status: str
    is_archived: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def parse_state(body: bytes) -> SessionState | None:
    """The state of the session in a 2xx body, or None when the body is not a session."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict:
        return None
    session_id, status = data.get("session_id"), data.get("status")
    if type(session_id) is not str or type(status) is not str:
        return None
    archived = data.get("is_archived", False)
    if archived is not True and archived is not False:  # (most are): else the lax words
        archived = _bool(archived)
    if archived is None:
        return None
    return SessionState(session_id, status, archived)


def _bool(value: Any) -> bool | None:
    if value is True or value is False:
        return bool(value)
    if type(value) in (int, float) and value in (0, 1):
        return bool(value)
    if type(value) is str:
        return BOOL_WORDS.get(value.lower())
    return None
