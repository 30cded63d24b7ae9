"""The measurements behind every cut of the rate: the answers of the last second, and
what the server accepted right after a 429.

A 429 says the server's limit was reached when its request arrived. The requests granted
*after* that one measure what the server accepts from then on: a ``Sample`` takes the next
``size`` grants and waits until all of them have been answered, whatever order the answers
come back in (a 429 is often answered faster than a request the server works on), then
gives the share of them that were 429s and the rate at which they were sent.

Answers are matched to grants by grant time (the gate hands each attempt its grant time
and the attempt reports it back), so an answer to a request sent before the 429's never
counts, and the measured rate is the one the gate really granted, not answer arrival times
that latency and jitter smear.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable

OK, THROTTLED, OVERLOADED = 0, 1, 2  # kinds of answer
MIN_SPAN = 0.02  # seconds of grants a sample spans at least
OVERWHELMED = 8  # 429s (seven answers in eight) that decide a sample at once
REORDER = 0.005  # seconds within which requests sent together may arrive in any order


class Sample:
    """The answers to the ``size`` grants that followed the request granted at ``since``."""

    __slots__ = (
        "answers",
        "end",
        "grants",
        "last",
        "late_at",
        "seen",
        "since",
        "size",
        "throttled",
    )

    def __init__(self, since: float, size: int, granted_since: Iterable[float]) -> None:
        self.since = since
        self.size = size
        self.grants = 0
        self.last = since  # the latest grant counted
        self.end = math.inf  # the grant time of the last request in the sample, once granted
        self.answers = 0
        self.throttled = 0
        self.seen: list[tuple[float, bool]] = []  # (grant time, a 429?) of each answer
        self.late_at = math.inf  # when a missing answer is a straggler, once asked
        for at in granted_since:  # granted while that 429 was on its way back
            self.granted(at)

    def granted(self, at: float) -> None:
        """A grant at ``at``; counts while the sample still takes grants: ``size`` of them,
        over ``MIN_SPAN`` at least (requests sent within a few milliseconds of each other
        reach the server in any order, so a span of a few of them says little)."""
        if at > self.since and self.end == math.inf:
            self.grants += 1
            self.last = at
            if self.grants >= self.size and at - self.since >= MIN_SPAN:
                self.end = at

    def answered(self, sent: float, throttled: bool) -> bool:
        """An answer to a request granted at ``sent``; True when it belongs to the sample."""
        if not self.since < sent <= self.end:
            return False
        self.answers += 1
        self.throttled += throttled
        self.seen.append((sent, throttled))
        return True

    def complete(self, now: float, late: Callable[[], float]) -> bool:
        """Every grant of the sample answered; or, once ``late()`` seconds have passed since
        the last one was sent, at least half of them (a request that hangs, or a reset one
        that never reports, must not hold the decision while the run goes on too fast); or
        ``OVERWHELMED`` 429s, seven answers in eight, from half the grants so far: far over
        the limit, no time to lose."""
        if self.throttled >= OVERWHELMED and 8 * self.throttled >= 7 * self.answers:
            return 2 * self.answers >= self.grants  # and not only the fast answers yet
        if self.end == math.inf:
            return False
        if self.answers >= self.grants:
            return True
        if 2 * self.answers < self.grants:
            return False
        if self.late_at == math.inf:  # asked once: late() sorts the last second's answers
            self.late_at = self.end + late()
        return now >= self.late_at

    @property
    def whole(self) -> bool:
        """Whether all the sample's grants were made (else it was decided early)."""
        return self.end != math.inf

    @property
    def share(self) -> float:
        """The share of 429s among the answers to grants made ``REORDER`` seconds or more
        after the 429's own: those sent with it reach the server in any order, and it may
        have taken some of them first (a spent window looks open at its edge)."""
        later = [throttled for sent, throttled in self.seen if sent >= self.since + REORDER]
        if len(later) < OVERWHELMED:
            return self.throttled / max(1, self.answers)
        return sum(later) / len(later)

    def accepted_rate(self) -> float:
        """Requests per second the server accepted while the sample was sent: the granted
        rate times the share not throttled (0 before any grant: nothing to measure)."""
        span = self.last - self.since
        return self.grants / span * (1.0 - self.share) if self.grants else 0.0


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

    def share(self, kind: int) -> float:
        return self.counts[kind] / max(1, len(self._entries))

    def latency(self, share: float) -> float:
        """The answer time (answered minus granted) that ``share`` of the answers of the
        last ``span`` seconds came within; 0 without answers."""
        waits = sorted(now - sent for now, _, sent in self._entries)
        return waits[min(len(waits) - 1, int(share * len(waits)))] if waits else 0.0

    def sent_after(self, since: float) -> list[tuple[float, int]]:
        """(grant time, kind) of the answers to requests granted after ``since``."""
        return [(sent, kind) for _, kind, sent in self._entries if sent > since]
