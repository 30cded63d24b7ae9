"""Adaptive control of the granted rate: what each kind of answer means for the whole run.

Pure logic on an injected clock; the gate (``worker.run.gate``) feeds it every grant and
every answer (with its request's grant time), and obeys ``rate`` and ``pause_until``.

- **429** is the rate-limit signal. The first 429 after a clean stretch arms a ``Sample``
  (``worker.run.sample``): the grants after that request's (16 while no limit is known,
  then a fifth of a second's worth of the limit found, 8 to 64), once all are answered,
  say what the server accepted per second, and the rate is cut once to ``margin`` x that,
  never below ``min_cut`` of itself in the first cut, nor below half of itself later.
  A server that counts fixed windows or a sliding log accepts nothing after its window
  is spent: then what it accepted over the last second is the measure.
- The fleet pauses until ``Retry-After`` only when most of the sample were 429s *and*
  the rate is ``far_over`` what is accepted. A probe that crossed the limit, or an
  isolated 429, pauses nobody: it only paces its own retry, and an isolated one cuts only
  if 429s are at least ``noise_share`` of the last second's answers.
- **5xx with Retry-After** is a per-request signal: only that session waits. The fleet
  pauses and the rate is cut only when such answers are over ``overload_share`` of the
  last second's: the service as a whole is overloaded. Such a cut takes away that share
  (half the rate at most), and the next waits two seconds, so a server that fails a fixed
  share whatever the rate does not drive it down.
- An answer to a request granted before the last cut is not measured (it was sent at
  the old rate): one wave of 429s yields one cut, and the rate cannot cascade to the floor.
- Recovery: the rate holds just under the accepted rate found for ``hold`` seconds, then
  probes beyond it, ``probe_step`` of it in the first second and doubling every second
  (never while a 429 is being measured), so that a limit that rose again is found within
  seconds, while a probe that crossed the limit costs a handful of 429s and a small cut.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from worker.run.sample import OK, OVERLOADED, THROTTLED, Recent, Sample

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Change:
    """A change of the granted rate, and why."""

    old: float
    new: float
    reason: str  # "throttled", "overloaded" or "probing"


@dataclass(slots=True)
class RateController:
    """The granted rate under ``ceiling`` (requests/s) and the fleet's pause."""

    ceiling: float
    clock: Clock
    max_pause: float = 60.0  # the longest Retry-After the fleet pauses for
    fallback_pause: float = 1.0  # the pause when a wave of 429s named no Retry-After
    margin: float = 0.97  # a cut goes to this share of what was accepted
    min_cut: float = 0.1  # the first cut keeps at least this share of the rate
    min_sample: int = 8  # grants a sample takes at least, once a limit is known
    max_sample: int = 64  # and at most
    patience: float = 1.0  # the longest a sample waits for a missing answer
    noise_share: float = 0.02  # 429s below this share of the last second are noise
    pause_share: float = 0.5  # a sample with more 429s than this ...
    far_over: float = 1.5  # ... and a rate this many times what is accepted: pause
    overload_share: float = 0.25  # 5xx with Retry-After above this share: overloaded
    hold: float = 1.5  # seconds the rate holds after a cut before probing
    probe_step: float = 0.1  # the first second's step up, doubling every second
    # the state the gate obeys
    rate: float = 0.0
    pause_until: float = -math.inf
    limit: float | None = None  # the accepted rate found at the last cut
    _cut_at: float = -math.inf
    _updated_at: float = -math.inf
    _sample: Sample | None = None  # the measurement a 429 armed
    _retry_after: float | None = None  # of the latest 429
    _recent: Recent = field(default_factory=lambda: Recent(1.0))
    _grants: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.rate = self.rate or self.ceiling

    @property
    def floor(self) -> float:
        return max(0.1, self.ceiling / 100)

    def granted(self, now: float) -> None:
        """A request was let through at ``now`` (the gate calls this once per grant, with
        the time it hands that request: the ``sent`` its answer is reported with)."""
        self._grants.append(now)
        while self._grants[0] < now - 1.0:
            self._grants.popleft()
        if self._sample is not None:
            self._sample.granted(now)

    def on_accepted(self, sent: float) -> Change | None:
        """Any answer that is neither a 429 nor a 5xx with Retry-After (timeouts included:
        the server took the request, and a token of its limit, even if no answer came).
        ``sent``: when its request was granted, on the same clock."""
        now = self.clock()
        change = self._answer(now, sent, OK)
        return change or self._probe(now)

    def on_throttled(self, retry_after: float | None, sent: float) -> Change | None:
        """A 429. Returns the change of rate, if any; sets ``pause_until`` if the fleet pauses."""
        now = self.clock()
        self._retry_after = retry_after
        return self._answer(now, sent, THROTTLED)

    def on_overloaded(self, retry_after: float | None, sent: float) -> Change | None:
        """A 5xx that said when to come back: that session waits; the fleet only when many do."""
        now = self.clock()
        self._answer(now, sent, OVERLOADED)
        recent = self._recent
        if sent <= self._cut_at or recent.counts[OVERLOADED] < 4:
            return None  # sent before the last cut, or too few yet
        if now - self._cut_at < 2 * recent.span:
            return None  # the last cut has not been measured for long
        share = recent.share(OVERLOADED)
        if share <= self.overload_share:
            return None
        sending = self._sending_rate(now)  # before the pause, which it would count from
        self._pause(now, retry_after)
        return self._cut(now, sending * max(0.5, 1.0 - share), "overloaded")

    # -- measurement -------------------------------------------------------------------

    def _answer(self, now: float, sent: float, kind: int) -> Change | None:
        self._recent.add(now, kind, sent)
        if sent <= self._cut_at:
            return None  # sent at the old rate, before the last cut: says nothing of the new
        sample = self._sample
        if sample is not None:
            sample.answered(sent, kind == THROTTLED)
            return self._decide(now, sample) if sample.complete(now, self._late) else None
        if kind == THROTTLED:
            since = (at for at in self._grants if at > sent)
            self._sample = sample = Sample(sent, self._sample_size(), since)
            for early, what in self._recent.sent_after(sent):  # answered before this 429
                sample.answered(early, what == THROTTLED)
        return None

    def _late(self) -> float:
        """When an answer still missing from a sample is a straggler: thrice the time that
        nine in ten answers of the last second took, at most ``patience``."""
        return min(self.patience, 3.0 * self._recent.latency(0.9))

    def _sample_size(self) -> int:
        """Answers measured after a 429: 16 before any limit is known (far above it, react
        fast); then a fifth of a second's worth of the limit found, within 8 to 64, so
        that a probe's cut is not thrown off by the noise of a small sample."""
        if self.limit is None:
            return 2 * self.min_sample
        return min(self.max_sample, max(self.min_sample, int(self.limit / 5)))

    def _decide(self, now: float, sample: Sample) -> Change | None:
        """The grants after a 429 have been answered: cut, pause, or not."""
        self._sample = None
        if sample.throttled == 0 and self._recent.share(THROTTLED) < self.noise_share:
            return None  # one isolated 429: its own retry is paced, nothing else
        accepted = self._accepted_rate(sample)
        if accepted >= self.rate:
            return None  # a window spent at the rate it accepts: the next one opens soon
        if sample.share > self.pause_share and self.rate > self.far_over * accepted:
            self._pause(now, self._retry_after)  # far over the limit: every worker waits
        return self._cut(now, accepted, "throttled")

    def _accepted_rate(self, sample: Sample) -> float:
        """What the server accepted while the sample was sent (a bucket was empty from the
        429 on). A server that counts whole windows (or a sliding log) accepts nothing more
        once one is spent: when the sample's later half was all 429s, what it accepted over
        the last second is the measure."""
        short = sample.accepted_rate()
        window = self._recent.counts[OK] / self._recent.span
        if self.limit is not None:  # a bucket's burst can swell the last second: trust it
            window = min(window, max(1.05 * self.limit, 0.9 * self.rate))  # up to a rise
        if not sample.whole or self.limit is not None:
            return max(short, window)  # early (a few 429s say "over", not how far), or later
        return short or window

    def _sending_rate(self, now: float) -> float:
        """Grants per second over the last second of sending (since the run's first grant
        and the last pause, if later), at most the granted rate; the granted rate when that
        is under a tenth of a second."""
        first = self._grants[0] if self._grants else now
        since = max(now - 1.0, first, min(self.pause_until, now))
        span = now - since
        if span < 0.1:
            return self.rate
        sent = len(self._grants) - bisect_left(self._grants, since)
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
        # small sample is noisy, one sent while sessions sat out a Retry-After measures
        # little demand, and a limit that really fell further is followed by the next cut
        step = self.min_cut if self.limit is None else 0.5
        self.limit = found
        self.rate = max(self.floor, step * old, self.margin * found)
        self._cut_at = now
        self._sample = None
        return Change(old, self.rate, reason) if self.rate != old else None

    def _probe(self, now: float) -> Change | None:
        """Hold under the found limit, then probe beyond it, doubling the step each second."""
        if self.limit is None or self.rate >= self.ceiling or now - self._updated_at < 0.25:
            return None
        if self._sample is not None:
            return None  # a 429 is being measured: no higher until it is decided
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
