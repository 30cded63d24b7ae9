"""The failure breaker: the run stops when most of the recent sessions failed."""

from __future__ import annotations

from collections import deque


class Breaker:
    """Trips when at least ``threshold`` of the last ``window`` settled sessions failed."""

    def __init__(self, window: int, threshold: float) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._threshold = threshold

    def record(self, failed: bool) -> bool:
        """Count one settled session; True while the window is full and failed enough."""
        self._recent.append(failed)
        full = len(self._recent) == self._recent.maxlen
        return full and sum(self._recent) >= self._threshold * len(self._recent)
