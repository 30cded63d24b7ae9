"""What one request got back: status, body, Retry-After, a transport failure."""

from __future__ import annotations

from dataclasses import dataclass

from worker.devin.error_text import describe_error
from worker.devin.state import SessionState, parse_state


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got back. ``status`` is None when no HTTP answer arrived."""

    status: int | None
    body: bytes = b""
    retry_after: float | None = None
    failure: str | None = None  # transport failure kind (timeout, ...), or an unread body
    maybe_sent: bool = False  # the server may have acted although no answer came

    @property
    def ok(self) -> bool:
        """A 2xx: the request was carried out (its body may still be unreadable)."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def session(self) -> SessionState | None:
        return parse_state(self.body) if self.ok and self.failure is None else None

    @property
    def error(self) -> str:
        if self.status is None:
            return self.failure or "no answer"
        if self.failure is not None:
            return f"HTTP {self.status}: {self.failure}"
        return (
            f"HTTP {self.status}: {describe_error(self.body)}"
            if self.body
            else f"HTTP {self.status}"
        )
