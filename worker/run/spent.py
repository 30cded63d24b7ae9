"""A server that turned away every request of a sample: one probe at a time until it takes one.

A sample (``worker.run.sample``) whose answers were all 429s says the server takes nothing
now, whatever the rate: a limit that counts fixed windows (or a log) is spent until the
next window opens, all at once. Sending on at the rate drew a wave of 429s every round trip
until then (a fixed one-second window at twice its limit: about 160 429s while one stayed
spent, 3.5% of the run's requests), and pausing until ``Retry-After`` (whole seconds)
left most of the next window unused. So the gate lets one request go at a time (a probe),
the next one ``gap`` after a probe's 429 came back (the time the sample took, or the time
accepted answers take if longer), until an answer to a request granted since is accepted.

The window opened between the last probe turned away and that one: what the server took
over the second before then is what it takes per second (the requests of a whole window),
and a rate over it by more than ``1 / NEAR`` is cut to it (``worker.run.control``). A probe
unanswered for ``EXPIRE_S`` no longer holds the next one back: a request that hangs must
not stall the run.
"""

from __future__ import annotations

import math

EXPIRE_S = 1.0  # a probe unanswered for this long no longer holds the next one back
NEAR = 0.9  # a rate within this share of what was taken is not cut at the reopening
PROBES = 16  # probes at most in the time Retry-After named


class Spent:
    """``room(now)`` before a grant, ``granted`` after it, ``answered`` for every answer
    until it returns True (open again), then ``opened``."""

    __slots__ = ("_next", "_out", "gap", "last", "since")

    def __init__(self, since: float, first: float, answer_time: float | None, wait: float) -> None:
        """Decided at ``since`` on a sample granted from ``first`` on; ``answer_time``: what
        accepted answers take (None: unknown), ``wait``: the ``Retry-After`` of its 429s."""
        self.since = since  # answers to grants before it say nothing
        self.gap = max(since - first, answer_time or 0.0, wait / PROBES)  # after a probe's 429
        self.last = since  # the grant time of the latest probe turned away
        self._out = -math.inf  # the grant time of the probe on its way, if any
        self._next = since  # when the next probe may go

    def room(self, now: float) -> bool:
        """Whether the next probe may go now."""
        return now >= self._next and now - self._out >= EXPIRE_S

    def granted(self, at: float) -> None:
        self._out = at

    def answered(self, now: float, sent: float, accepted: bool) -> bool:
        """An answer to the request granted at ``sent``; True once the server took one
        granted since the decision: the limit is open again."""
        if accepted and sent > self.since:
            return True
        if sent == self._out:  # the probe's 429: the next one after the gap
            self._out, self._next, self.last = -math.inf, now + self.gap, sent
        return False

    def opened(self, sent: float) -> float:
        """When, on the grant clock, the limit opened again, its first accepted request
        granted at ``sent``: halfway between that and the last probe turned away."""
        return (self.last + sent) / 2
