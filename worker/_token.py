"""The API token: from ``--token-file`` (or ``token_file``) or ``DEVIN_API_KEY``, as
Windows and shells hand it over: surrounding whitespace, a CRLF and Notepad's BOM are
dropped; a token holding any other control character, a space or a non-ASCII character is
a ConfigError (exit 2) naming where it came from, never a traceback from the HTTP layer."""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from worker._names import TOKEN_ENV
from worker.errors import ConfigError

__all__ = ["Secret", "read_token"]


class Secret:
    """The token as the settings hold it: its value only on asking (``get_secret_value``),
    stars wherever it is printed, logged or put in a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"


def read_token(token_file: Any, environ: Mapping[str, str]) -> str | None:
    """The token, or None when none is given."""
    if token_file:
        path = Path(str(token_file))
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            import structlog

            structlog.get_logger("worker.settings").warning(
                "token_file.readable_by_others", path=str(path), hint=f"chmod 600 {path}"
            )
        return _clean(text, f"the token file {path}")
    return _clean(environ.get(TOKEN_ENV, ""), TOKEN_ENV)


def _clean(text: str, origin: str) -> str | None:
    token = text.strip().removeprefix("\ufeff").strip()
    bad = next((i for i, c in enumerate(token) if c <= " " or c >= "\x7f"), None)
    if bad is not None:
        raise ConfigError(
            f"the API token from {origin} holds a control character, space or non-ASCII "
            f"character at position {bad + 1}; a token is one word (cog_...): save it "
            "again as plain text"
        )
    return token or None
