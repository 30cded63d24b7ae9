"""Redaction: the one place every byte the tool writes passes before it leaves.

Sinks: the result log (``ResultLog.write`` scrubs each encoded record; ``ResultLog.result``
scrubs the text fields of a session record, whose other fields are numbers, outcomes and
validated ids, so that an id such as ``devin-cog_x`` is never mangled), stderr and stdout
(``guard_standard_streams`` wraps ``sys.stderr``/``sys.stdout`` once, so structlog output,
rich tables, summaries, plain prints and tracebacks are all scrubbed), and structlog events
(``worker.output.logs`` delegates its scrubbing here).

What is masked: the live token (every secret registered with ``add_secret``, raw and
JSON-escaped), token-shaped strings (``cog_…``), ``Bearer`` credentials and the value of an
``Authorization:``/``Authorization=`` pair. Org ids (``org-…``) and session ids are not
secrets and stay visible. Each write is scrubbed on its own: the tool writes whole
messages, so a secret is never split across two writes.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

import orjson

MASK = "[REDACTED]"
_MIN_SECRET = 6  # a shorter "secret" would mask ordinary words everywhere

_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=\-]{6,}"), r"\1 " + MASK),
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|x-api-key)(\\?[\"']?\s*[:=]\s*\\?[\"']?)"
            r"((?>(?:[A-Za-z]+[ \t]+)?))(?!\[REDACTED\])[^\s\"',;}\]\\]+"
        ),
        r"\1\2\3" + MASK,
    ),
    # not inside a longer word: ``devin-cog_x`` is a valid session id, not a token
    (re.compile(r"(?<![A-Za-z0-9_\-])cog_(?!\[REDACTED\])[A-Za-z0-9_\-]+"), "cog_" + MASK),
)
_BYTES_PATTERNS: tuple[tuple[re.Pattern[bytes], bytes], ...] = tuple(
    (re.compile(p.pattern.encode()), r.encode()) for p, r in _TEXT_PATTERNS
)


class Redactor:
    """The registered secrets and the token shapes; ``scrub`` masks both."""

    def __init__(self) -> None:
        self._secrets: list[str] = []
        self._secret_bytes: list[bytes] = []

    def add_secret(self, secret: str | None) -> None:
        """Mask ``secret`` from now on, wherever it appears (raw or JSON-escaped)."""
        if not secret or len(secret) < _MIN_SECRET or secret in self._secrets:
            return
        self._secrets.append(secret)
        escaped = orjson.dumps(secret)[1:-1]
        self._secret_bytes.extend({secret.encode(), escaped})
        if escaped.decode() != secret:
            self._secrets.append(escaped.decode())

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        # cheap substring tests first: a regex scan costs ten times the encoding of a record,
        # and almost no text holds any of these
        low = text.lower()
        if not ("cog_" in low or "bearer" in low or "authoriz" in low or "api-key" in low):
            return text
        for pattern, replacement in _TEXT_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        for secret in self._secret_bytes:
            if secret in data:
                data = data.replace(secret, MASK.encode())
        low = data.lower()
        if not (b"cog_" in low or b"bearer" in low or b"authoriz" in low or b"api-key" in low):
            return data
        for pattern, replacement in _BYTES_PATTERNS:
            data = pattern.sub(replacement, data)
        return data


REDACTOR = Redactor()
add_secret = REDACTOR.add_secret
scrub = REDACTOR.scrub
scrub_bytes = REDACTOR.scrub_bytes


class RedactingStream:
    """A text stream that scrubs every write before passing it on; the rest is delegated."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(scrub(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def guard(stream: TextIO) -> TextIO:
    """``stream`` wrapped in a ``RedactingStream`` (once: a guarded stream is returned as is)."""
    if isinstance(stream, RedactingStream):
        return stream
    return RedactingStream(stream)  # type: ignore[return-value]


def guard_standard_streams() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` through the redaction (idempotent), each
    behind its policy for a closed, full or reader-less stream (`worker.output.standard`)."""
    from worker.output.standard import Stderr, Stdout

    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = guard(Stdout(sys.stdout))  # type: ignore[arg-type]
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = guard(Stderr(sys.stderr))  # type: ignore[arg-type]
