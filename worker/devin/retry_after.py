"""The ``Retry-After`` header of an answer: delay-seconds or an HTTP-date."""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_date(text, now)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until_date(text: str, now: datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime dates come back naive; HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(delta, 0.0)
