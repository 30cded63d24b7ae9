"""Session ids: the one gate between untrusted input text and a URL path.

A valid id is ``devin-`` followed by 1 to 128 ASCII letters, digits, ``_`` or ``-``.
Every character of that set survives ``urllib.parse.quote(id, safe="")`` unchanged, so an
accepted id can never add a path segment, a query or a fragment to the DELETE URL.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["SESSION_ID_BODY", "SESSION_ID_PATTERN", "InvalidId", "parse_session_id", "trim"]

# what an id is: the one rule, for a value (the pattern) and for plain lines (`lines`)
SESSION_ID_BODY = "devin-[A-Za-z0-9_-]{1,128}"
SESSION_ID_PATTERN = re.compile(rf"^{SESSION_ID_BODY}\Z", re.ASCII)

_PREFIX = "devin-"
_MAX_LENGTH = len(_PREFIX) + 128
_BOM = "\ufeff"
_QUOTES = "\"'"
# Unicode space separators plus the usual ASCII ones; control characters such as NUL,
# U+001C..U+001F or U+0085 are deliberately not trimmed: they make a line invalid.
_SPACES = (
    " \t\n\r\x0b\x0c\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# what `trim` may take off the front of a value: one that starts with anything else is kept
# non-empty ("" is in every string: an empty value is never taken for non-empty)
TRIMMED_FIRST = _SPACES + _BOM + _QUOTES
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_match = SESSION_ID_PATTERN.match


class InvalidId(ValueError):
    """An input value is not a session id; the message is the reason, short and teaching."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_session_id(raw: str) -> bool:
    """Whether ``raw`` holds a valid session id (``parse_session_id`` would accept it)."""
    try:
        parse_session_id(raw)
    except InvalidId:
        return False
    return True


def parse_session_id(raw: str) -> str:
    """Return the clean session id held by ``raw``, or raise `InvalidId` saying why not.

    Surrounding whitespace (Unicode spaces included), a leading byte-order mark and one
    pair of surrounding quotes are trimmed; nothing inside the id is ever changed. The
    reason is the most specific one found: a path separator is reported before the
    prefix, a look-alike letter before a wrong length.
    """
    if _match(raw):
        return raw
    text = trim(raw)
    if _match(text):
        return text
    raise InvalidId(_diagnose(text))


def trim(raw: str) -> str:
    """Strip surrounding spaces, a leading BOM and one pair of surrounding quotes."""
    text = raw.strip(_SPACES)
    if text.startswith(_BOM):
        text = text[1:].strip(_SPACES)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        text = text[1:-1].strip(_SPACES)
    return text


def _diagnose(text: str) -> str:
    for check in _CHECKS:
        reason = check(text)
        if reason is not None:
            return reason
    return "not a valid session id"  # pragma: no cover - the checks cover every rejection


def _codepoint(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip()


def _check_empty(text: str) -> str | None:
    return "empty" if not text else None


def _check_control(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) == "Cc":
            return f"contains a control character (U+{ord(char):04X})"
    return None


def _check_url(text: str) -> str | None:
    if "://" in text:
        return "looks like a URL; give the bare id (devin-...)"
    for sep in "/\\":
        if sep in text:
            return f"contains {sep!r} (ids cannot contain path separators)"
    if ".." in text:
        return "contains '..' (ids cannot contain path segments)"
    return None


def _check_url_syntax(text: str) -> str | None:
    found = _PERCENT_ESCAPE.search(text)
    if found:
        return f"contains a percent-encoded character ({found.group()!r})"
    if "?" in text:
        return "contains '?' (ids cannot carry a query string)"
    if "#" in text:
        return "contains '#' (ids cannot carry a fragment)"
    return None


def _check_whitespace(text: str) -> str | None:
    if any(char in _SPACES for char in text):
        return "contains whitespace inside the id"
    return None


def _check_non_ascii(text: str) -> str | None:
    for char in text:
        if not char.isascii():
            if unicodedata.category(char) == "Cf":
                return f"contains an invisible character {_codepoint(char)}"
            return (
                f"contains non-ASCII character {_codepoint(char)} "
                "(look-alike letters are not accepted)"
            )
    return None


def _check_prefix(text: str) -> str | None:
    if text.startswith(_PREFIX):
        return "nothing after 'devin-'" if text == _PREFIX else None
    if text.lower().startswith(_PREFIX):
        return "does not start with 'devin-' (the prefix is lower-case)"
    return "does not start with 'devin-'"


def _check_characters(text: str) -> str | None:
    for char in text[len(_PREFIX) :]:
        if char not in _ALLOWED:
            return f"contains {char!r} (allowed after 'devin-': letters, digits, '_' and '-')"
    return None


def _check_length(text: str) -> str | None:
    if len(text) > _MAX_LENGTH:
        return (
            f"longer than {_MAX_LENGTH} characters ({len(text)}; an id is 'devin-' "
            "plus at most 128 letters, digits, '_' or '-')"
        )
    return None


_CHECKS: tuple[Callable[[str], str | None], ...] = (
    _check_empty,
    _check_whitespace,
    _check_control,
    _check_url,
    _check_url_syntax,
    _check_non_ascii,
    _check_prefix,
    _check_characters,
    _check_length,
)
