"""The failure breaker: the run stops when most of the recent sessions failed."""

from __future__ import annotations

from collections import deque


class Breaker:
    """Trips when at least ``threshold`` of the last ``window`` settled sessions failed."""

    def __init__(self, window: int, threshold: float) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._threshold = threshold
        self._failed = 0  # how many of ``_recent`` failed (kept, not summed each time)

    def record(self, failed: bool) -> bool:
        """Count one settled session; True while the window is full and failed enough."""
        recent = self._recent
        if len(recent) == recent.maxlen and recent[0]:
            self._failed -= 1  # the oldest leaves the window
        recent.append(failed)
        self._failed += failed
        full = len(recent) == recent.maxlen
        return full and self._failed >= self._threshold * len(recent)
