"""Query parameters as FastAPI reads them: booleans, integers, list filters, cursors.

Filters are flat query keys, arrays repeated (``tags=a&tags=b``). Semantics:
list filters match when the session's value is one of the given values (``tags``: the
session has any of them; ``repo_names``: any pull request is in one of them);
``created_after``/``updated_after`` are inclusive (``>=``), ``created_before``/
``updated_before`` exclusive (``<``); scalar filters match by equality. Unknown keys are
ignored. The cursor is the URL-safe base64 of ``offset:N`` into the filtered list.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Any

from multidict import MultiMapping

Session = dict[str, Any]
Predicate = Callable[[Session], bool]

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_LIST_FIELDS = {
    "session_ids": "session_id",
    "user_ids": "user_id",
    "service_user_ids": "service_user_id",
    "origins": "origin",
    "automation_ids": "automation_id",
}
_SCALAR_FIELDS = ("playbook_id", "parent_session_id", "category", "schedule_id")
_TIME_FILTERS = {
    "created_after": ("created_at", True),
    "created_before": ("created_at", False),
    "updated_after": ("updated_at", True),
    "updated_before": ("updated_at", False),
}
MAX_PAGE = 200
DEFAULT_PAGE = 100


class QueryError(ValueError):
    """One bad query parameter: becomes a 422 naming ``loc``."""

    def __init__(self, name: str, msg: str, kind: str) -> None:
        super().__init__(msg)
        self.loc: list[str | int] = ["query", name]
        self.msg = msg
        self.kind = kind


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise QueryError(
        name, "Input should be a valid boolean, unable to interpret input", "bool_parsing"
    )


def parse_int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise QueryError(
            name,
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        ) from None


def parse_first(query: MultiMapping[str]) -> int:
    raw = query.get("first")
    if raw is None:
        return DEFAULT_PAGE
    first = parse_int("first", raw)
    if first < 1:
        raise QueryError(
            "first", "Input should be greater than or equal to 1", "greater_than_equal"
        )
    if first > MAX_PAGE:
        raise QueryError(
            "first", f"Input should be less than or equal to {MAX_PAGE}", "less_than_equal"
        )
    return first


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(query: MultiMapping[str]) -> int:
    raw = query.get("after")
    if raw is None or raw == "":
        return 0
    try:
        text = base64.urlsafe_b64decode(raw.encode()).decode()
        label, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeError, ValueError):
        offset = -1
        label = ""
    if label != "offset" or offset < 0:
        raise QueryError(
            "after", "Invalid cursor: pass the end_cursor of a previous page", "value_error"
        )
    return offset


def build_filters(query: MultiMapping[str]) -> list[Predicate]:
    """One predicate per filter present in ``query``; a session matches if all hold."""
    filters: list[Predicate] = []
    for key, attr in _LIST_FIELDS.items():
        if key in query:
            filters.append(_one_of(attr, frozenset(query.getall(key))))
    if "tags" in query:
        filters.append(_any_tag(frozenset(query.getall("tags"))))
    if "repo_names" in query:
        filters.append(_any_repo(query.getall("repo_names")))
    for key in _SCALAR_FIELDS:
        if key in query:
            filters.append(_one_of(key, frozenset((query[key],))))
    for key, (attr, inclusive) in _TIME_FILTERS.items():
        if key in query:
            filters.append(_time_bound(attr, parse_int(key, query[key]), inclusive))
    if "is_archived" in query:
        filters.append(
            _one_of("is_archived", frozenset((parse_bool("is_archived", query["is_archived"]),)))
        )
    return filters


def select(sessions: Iterable[Session], filters: list[Predicate]) -> list[Session]:
    return [s for s in sessions if all(f(s) for f in filters)]


def _one_of(attr: str, values: frozenset[Any]) -> Predicate:
    return lambda s: s.get(attr) in values


def _any_tag(tags: frozenset[str]) -> Predicate:
    return lambda s: not tags.isdisjoint(s["tags"])


def _any_repo(repos: list[str]) -> Predicate:
    prefixes = tuple(f"https://github.com/{repo}/" for repo in repos)
    return lambda s: any(pr["pr_url"].startswith(prefixes) for pr in s["pull_requests"])


def _time_bound(attr: str, bound: int, inclusive: bool) -> Predicate:
    if inclusive:
        return lambda s: bool(s[attr] >= bound)
    return lambda s: bool(s[attr] < bound)
