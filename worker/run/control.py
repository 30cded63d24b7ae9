"""Adaptive control of the granted rate: what each kind of answer means for the whole run.

Pure logic on an injected clock; the gate (``worker.run.gate``) feeds it every grant and
every answer, and obeys ``rate`` and ``pause_until``.

- **429** is the rate-limit signal. The first 429 after a clean stretch arms a measurement:
  the answers that follow (16 while no limit is known, then a fifth of a second's worth of
  the limit found, 8 to 64) give what the server accepted per second, and the rate is cut
  once to ``margin`` x that, never below ``min_cut`` of itself in the first cut, nor below
  half of itself in any later one. The measurement starts *after* a 429, when the server's
  bucket is known to be empty, so its initial burst does not inflate it. When more than
  ``pause_share`` of that sample were 429s too (far over the limit, or a hard limit), every
  worker also pauses until ``Retry-After``. An isolated 429 (a probe that just crossed the
  limit, or jitter) pauses nobody: it only paces its own retry, and it cuts only if the
  429s are at least ``noise_share`` of the last second's answers.
- **5xx with Retry-After** is a per-request signal: only that session waits. It pauses
  the fleet and cuts the rate only when such answers are more than ``overload_share``
  (a quarter) of the last second's answers: then the service as a whole is overloaded.
  Such a cut takes away that share (half the rate at most), and the next one waits two
  seconds, so a server that fails a fixed share whatever the rate does not drive it down.
- After a cut, the answers to requests already in flight are not measured (they were
  sent at the old rate), so one wave of 429s yields one cut, and pauses never leave a
  sample empty: a cut needs ``min_sample`` fresh answers, so the rate cannot cascade to
  the floor for lack of measurements.
- Recovery: the rate holds just under the accepted rate it found for ``hold`` seconds,
  then probes beyond it, ``probe_step`` of it in the first second and doubling every
  second, so that a limit that rose again is found within seconds, while a probe that
  crossed the limit costs a handful of 429s and one small cut.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
OK, THROTTLED, OVERLOADED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Change:
    """A change of the granted rate, and why."""

    old: float
    new: float
    reason: str  # "throttled", "overloaded" or "probing"


class _Window:
    """The answers of the last ``span`` seconds, counted by kind."""

    __slots__ = ("_entries", "counts", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self._entries: deque[tuple[float, int]] = deque()
        self.counts = [0, 0, 0]

    def add(self, now: float, kind: int) -> None:
        self._entries.append((now, kind))
        self.counts[kind] += 1
        entries, horizon = self._entries, now - self.span
        while entries[0][0] < horizon:
            self.counts[entries.popleft()[1]] -= 1

    def share(self, kind: int) -> float:
        return self.counts[kind] / max(1, len(self._entries))


@dataclass(slots=True)
class RateController:
    """The granted rate under ``ceiling`` (requests/s) and the fleet's pause."""

    ceiling: float
    clock: Clock
    max_pause: float = 60.0
    fallback_pause: float = 1.0
    margin: float = 0.97
    min_cut: float = 0.1
    min_sample: int = 8
    max_sample: int = 64
    noise_share: float = 0.02
    pause_share: float = 0.5
    overload_share: float = 0.25
    hold: float = 1.5
    probe_step: float = 0.1
    rate: float = 0.0
    pause_until: float = -math.inf
    limit: float | None = None  # the accepted rate found at the last cut
    _cut_at: float = -math.inf
    _updated_at: float = -math.inf
    _granted: int = 0
    _answered: int = 0
    _skip: int = 0  # answers to requests in flight at the last cut: sent at the old rate
    _armed: bool = False
    _after: int = 0  # answers since the 429 that armed the measurement
    _after_throttled: int = 0
    _retry_after: float | None = None  # of the latest 429
    _armed_at: float = -math.inf
    _recent: _Window = field(default_factory=lambda: _Window(1.0))
    _grants: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.rate = self.rate or self.ceiling

    @property
    def floor(self) -> float:
        return max(0.1, self.ceiling / 100)

    def granted(self) -> None:
        """A request was let through (the gate calls this once per grant)."""
        now = self.clock()
        self._granted += 1
        self._grants.append(now)
        while self._grants[0] < now - 1.0:
            self._grants.popleft()

    def on_accepted(self) -> Change | None:
        """Any answer that is neither a 429 nor a 5xx with Retry-After (timeouts included:
        the server took the request, and a token of its limit, even if no answer came)."""
        now = self.clock()
        change = self._answer(now, OK)
        return change or self._probe(now)

    def on_throttled(self, retry_after: float | None) -> Change | None:
        """A 429. Returns the change of rate, if any; sets ``pause_until`` if the fleet pauses."""
        now = self.clock()
        self._retry_after = retry_after
        return self._answer(now, THROTTLED)

    def on_overloaded(self, retry_after: float | None) -> Change | None:
        """A 5xx that said when to come back: that session waits; the fleet only when many do."""
        now = self.clock()
        self._answer(now, OVERLOADED)
        recent = self._recent
        if self._skip or recent.counts[OVERLOADED] < 4 or now - self._cut_at < 2 * recent.span:
            return None  # too few yet, or the last cut has not been measured for long
        share = recent.share(OVERLOADED)
        if share <= self.overload_share:
            return None
        self._pause(now, retry_after)
        return self._cut(now, self._sending_rate(now) * max(0.5, 1.0 - share), "overloaded")

    # -- measurement -------------------------------------------------------------------

    def _answer(self, now: float, kind: int) -> Change | None:
        self._answered += 1
        self._recent.add(now, kind)
        if self._skip:
            self._skip -= 1
            return None
        if self._armed:
            self._after += 1
            self._after_throttled += kind == THROTTLED
            return self._decide(now) if self._after >= self._sample_size() else None
        if kind == THROTTLED:
            self._armed, self._after, self._after_throttled = True, 0, 0
            self._armed_at = now
        return None

    def _sample_size(self) -> int:
        """Answers measured after a 429: 16 before any limit is known (far above it, react
        fast); then a fifth of a second's worth of the limit found, within 8 to 64, so
        that a probe's cut is not thrown off by the noise of a small sample."""
        if self.limit is None:
            return 2 * self.min_sample
        return min(self.max_sample, max(self.min_sample, int(self.limit / 5)))

    def _decide(self, now: float) -> Change | None:
        """A 429 armed a measurement and ``min_sample`` answers followed: cut, pause, or not."""
        self._armed = False
        share = self._after_throttled / self._after
        if self._after_throttled == 0 and self._recent.share(THROTTLED) < self.noise_share:
            return None  # one isolated 429: its own retry is paced, nothing else
        if share > self.pause_share:
            self._pause(now, self._retry_after)
        return self._cut(now, self._accepted_rate(now, share), "throttled")

    def _accepted_rate(self, now: float, share: float) -> float:
        """What the server accepted while the sample was taken: answers that were not 429s
        per second since the 429 that armed it (its bucket was empty from then on), or, when
        the sample came too fast to time, the sending rate times the share accepted."""
        span = now - self._armed_at
        if span >= 0.05:
            return (self._after - self._after_throttled) / span
        return self._sending_rate(now) * (1.0 - share)

    def _sending_rate(self, now: float) -> float:
        """Grants per second over the last second of sending, at most the granted rate."""
        if not self._grants:
            return self.rate
        since = max(now - 1.0, self._grants[0], min(self.pause_until, now))
        span = now - since
        if span < 0.1:
            return self.rate
        sent = len(self._grants) - _count_before(self._grants, since)
        return min(self.rate, sent / span)

    # -- actions -----------------------------------------------------------------------

    def _pause(self, now: float, retry_after: float | None) -> None:
        wait = self.fallback_pause if retry_after is None else retry_after
        if wait > self.max_pause:
            return  # that attempt fails at once (terminate's rule); nobody else waits
        self.pause_until = max(self.pause_until, now + wait)

    def _cut(self, now: float, accepted: float, reason: str) -> Change | None:
        old = self.rate
        found = max(self.floor, min(old, accepted))
        # the first cut may go far (10x too fast is common); later ones halve at most: a
        # sample taken while sessions sat out a Retry-After measures little demand, not the
        # limit, and a limit that really fell further is followed by the next cut
        step = self.min_cut if self.limit is None else 0.5
        self.limit = found
        self.rate = max(self.floor, step * old, self.margin * found)
        self._cut_at = now
        self._armed = False
        self._skip = max(0, self._granted - self._answered)
        return Change(old, self.rate, reason) if self.rate != old else None

    def _probe(self, now: float) -> Change | None:
        """Hold under the found limit, then probe beyond it, doubling the step each second."""
        if self.limit is None or self.rate >= self.ceiling or now - self._updated_at < 0.25:
            return None
        self._updated_at = now
        start = max(self._cut_at, self.pause_until) + self.hold
        if now < start:
            return None
        growth = self.probe_step * (2.0 ** min(now - start, 30.0) - 1.0)
        new = min(self.ceiling, self.margin * self.limit * (1.0 + growth))
        if new < self.ceiling and new < self.rate * 1.01:
            return None  # changes under 1% are not worth a log line
        old, self.rate = self.rate, new
        return Change(old, new, "probing")


def _count_before(times: deque[float], since: float) -> int:
    """How many of the sorted ``times`` are before ``since`` (a short scan from the left)."""
    count = 0
    for at in times:
        if at >= since:
            break
        count += 1
    return count
