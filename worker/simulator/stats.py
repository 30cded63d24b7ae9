"""Counters of what the simulator received and answered, served at /_simulator/stats.

Updated on every request, so each update is a few dict increments; the peak rate is a
sliding one-second window over a deque of arrival times (amortised O(1)). Requests and
429s are also counted per whole second since the first request (``per_second``), so that
a benchmark can take the accepted rate over the body of a run, leaving out its ends.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

UNEXPECTED_CAP = 100


@dataclass(slots=True)
class SimulatorStats:
    """Live counters; ``snapshot()`` gives the JSON view, ``reset()`` zeroes them in place."""

    requests_total: int = 0
    requests_by_method: Counter[str] = field(default_factory=Counter)
    requests_by_status: Counter[str] = field(default_factory=Counter)
    deletes_by_session: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    auth_failures: int = 0
    ghost_successes: int = 0
    terminated: int = 0
    archived: int = 0
    unexpected_total: int = 0
    unexpected_requests: list[str] = field(default_factory=list)
    peak_requests_per_second: int = 0
    first_request_at: float | None = None
    last_request_at: float | None = None
    requests_per_second: list[int] = field(default_factory=list)
    throttled_per_second: list[int] = field(default_factory=list)
    _window: deque[float] = field(default_factory=deque, repr=False)

    def record_arrival(self, method: str, at: float) -> None:
        """Count one API request arriving at monotonic time ``at``."""
        self.requests_total += 1
        self.requests_by_method[method] += 1
        if self.first_request_at is None:
            self.first_request_at = at
        self.last_request_at = at
        self._count(self.requests_per_second, at)
        window = self._window
        window.append(at)
        while at - window[0] >= 1.0:
            window.popleft()
        if len(window) > self.peak_requests_per_second:
            self.peak_requests_per_second = len(window)

    def record_status(self, status: int) -> None:
        self.requests_by_status[str(status)] += 1
        if status == 429:
            self.throttled += 1
            if self.last_request_at is not None:
                self._count(self.throttled_per_second, self.last_request_at)

    def _count(self, counts: list[int], at: float) -> None:
        """Add one to ``counts`` at the whole second of ``at`` since the first request."""
        second = int(at - (self.first_request_at or at))
        if len(counts) <= second:
            counts.extend([0] * (second + 1 - len(counts)))
        counts[second] += 1

    def record_unexpected(self, method: str, path: str) -> None:
        self.unexpected_total += 1
        if len(self.unexpected_requests) < UNEXPECTED_CAP:
            self.unexpected_requests.append(f"{method} {path}")

    @property
    def sessions_with_multiple_deletes(self) -> int:
        return sum(1 for count in self.deletes_by_session.values() if count > 1)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of every counter."""
        return {
            "requests_total": self.requests_total,
            "requests_by_method": dict(self.requests_by_method),
            "requests_by_status": dict(self.requests_by_status),
            "deletes_total": sum(self.deletes_by_session.values()),
            "deletes_by_session": dict(self.deletes_by_session),
            "sessions_with_multiple_deletes": self.sessions_with_multiple_deletes,
            "throttled": self.throttled,
            "faults_injected": dict(self.faults_injected),
            "ghost_successes": self.ghost_successes,
            "peak_requests_per_second": self.peak_requests_per_second,
            "unexpected_total": self.unexpected_total,
            "unexpected_requests": list(self.unexpected_requests),
            "auth_failures": self.auth_failures,
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
            "requests_per_second": list(self.requests_per_second),
            "throttled_per_second": list(self.throttled_per_second),
            "terminated": self.terminated,
            "archived": self.archived,
        }

    def reset(self) -> None:
        """Zero every counter, keeping this object (holders of it see the reset)."""
        fresh = SimulatorStats()
        for name in self.__slots__:
            setattr(self, name, getattr(fresh, name))
