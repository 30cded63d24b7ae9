"""The answers of the last second and the grants behind them: what every rule of the rate
controller (``worker.run.control``) reads besides a sample (``worker.run.sample``)."""

from __future__ import annotations

from bisect import bisect_left
from collections import deque

OK, THROTTLED, OVERLOADED = 0, 1, 2  # kinds of answer


class Recent:
    """The answers of the last ``span`` seconds, counted by kind, with their grant times."""

    __slots__ = ("_entries", "counts", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self._entries: deque[tuple[float, int, float]] = deque()
        self.counts = [0, 0, 0]

    def add(self, now: float, kind: int, sent: float) -> None:
        self._entries.append((now, kind, sent))
        self.counts[kind] += 1
        entries, horizon = self._entries, now - self.span
        while entries[0][0] < horizon:
            self.counts[entries.popleft()[1]] -= 1

    def __len__(self) -> int:
        return len(self._entries)

    def share(self, kind: int) -> float:
        return self.counts[kind] / max(1, len(self._entries))

    def rate_before(self, kind: int, end: float) -> float:
        """Answers of ``kind`` per second to the grants of the ``span`` seconds up to ``end``
        (of those answered since the latest answer's ``span``)."""
        start = end - self.span
        return sum(1 for _, k, at in self._entries if k == kind and start < at <= end) / self.span

    def latency(self, share: float, kind: int | None = None) -> float | None:
        """The answer time (answered minus granted) that ``share`` of the answers (of
        ``kind``, or all) of the last ``span`` seconds came within; None without any."""
        waits = sorted(now - sent for now, k, sent in self._entries if kind in (None, k))
        return waits[min(len(waits) - 1, int(share * len(waits)))] if waits else None

    def sent_after(self, since: float) -> list[tuple[float, int]]:
        """(grant time, kind) of the answers to requests granted after ``since``."""
        return [(sent, kind) for _, kind, sent in self._entries if sent > since]


def straggling(recent: Recent, patience: float) -> float:
    """When an answer still missing from a sample is a straggler: thrice the time that
    nine in ten accepted answers of the last second took, at most ``patience`` (and that
    before any came back). 429s are left out: they often come back at once."""
    latency = recent.latency(0.9, OK)
    return patience if latency is None else min(patience, 3.0 * latency)


def sending_rate(grants: deque[float], since: float, now: float, rate: float) -> float:
    """Grants per second since ``since`` (``grants``: those of the last second, in order), at
    most ``rate``; ``rate`` itself when that is under a tenth of a second."""
    span = now - since
    if span < 0.1:
        return rate
    return min(rate, (len(grants) - bisect_left(grants, since)) / span)
