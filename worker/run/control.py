"""Adaptive control of the granted rate: what each kind of answer means for the whole run.

Pure logic on an injected clock; the gate (``worker.run.gate``) feeds it every grant and
every answer (with its request's grant time), and obeys ``rate``, ``pause_until`` and
``room`` (the slow start's window, ``worker.run.slowstart``). README "Rate limiting"
tells the whole story; in short:

- **429** is the rate-limit signal. It arms a ``Sample`` (``worker.run.sample``) of the
  grants after that request's; once they are answered, the rate is cut once to ``margin``
  x what the server accepted (at most to ``min_cut`` of itself the first time, half
  later). Eight 429s in a row, or eight to requests sent after the sample's, first
  *hold* all grants until the sample is in; in the slow start a ``touched`` one cuts nothing.
- The fleet pauses until ``Retry-After`` only when most (not all) of the sample were 429s
  and the rate is ``far_over`` what is accepted; a probe's or an isolated 429 pauses nobody.
  None accepted: one request at a time until one is (``worker.run.spent``), then a cut to
  what the second before took.
- **5xx with Retry-After**: only that session waits, unless such answers are over
  ``overload_share`` of the last second's, 32 answers at least: then pause and cut.
- An answer to a request granted before the last cut is not measured: no cascade.
- Recovery: hold under the found limit for ``hold`` seconds, then probe beyond it,
  ``probe_step`` in the first second and doubling every second.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from worker.run.recent import OK, OVERLOADED, THROTTLED, Recent, sending_rate, straggling
from worker.run.sample import Sample, accepted_rate, sample_size
from worker.run.slowstart import SlowStart
from worker.run.spent import NEAR, Spent

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
    share: Callable[[], float] = lambda: 1.0  # of the grants rate counts (a fleet's: its own)
    # the state the gate obeys
    start: SlowStart | None = field(default_factory=SlowStart)  # None once over
    rate: float = 0.0
    pause_until: float = -math.inf
    limit: float | None = None  # the accepted rate found at the last cut
    _cut_at: float = -math.inf
    _updated_at: float = -math.inf
    _sample: Sample | None = None  # the measurement a 429 armed
    _retry_after: float | None = None  # of the latest 429
    _recent: Recent = field(default_factory=lambda: Recent(1.0))
    _grants: deque[float] = field(default_factory=deque)
    _held_from: float | None = None  # pause_until before a hold (see _hold)
    _spent: Spent | None = None  # probing a server that took none of a sample
    holds: int = 0  # holds begun, and pauses begun or extended (a worker's metrics)
    pauses: int = 0

    def __post_init__(self) -> None:
        self.rate = self.rate or self.ceiling

    @property
    def floor(self) -> float:
        return max(0.1, self.ceiling / 100)

    def granted(self, now: float) -> None:
        """A request was let through at ``now`` (the gate calls this once per grant, with
        the time it hands that request: the ``sent`` its answer is reported with)."""
        self._grants.append(now)
        for window in (self.start, self._spent):
            if window is not None:
                window.granted(now)
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
        if sent <= self._cut_at or len(recent) < 32:  # (at 5% faults, 4 of 12 happen)
            return None  # sent before the last cut, or too few yet to be a share
        if now - self._cut_at < 2 * recent.span:
            return None  # the last cut has not been measured for long
        share = recent.share(OVERLOADED)
        if share <= self.overload_share:
            return None
        first = self._grants[0] if self._grants else now  # the last second of sending, from
        since = max(now - 1.0, first, min(self.pause_until, now))  # the run's start or a pause
        sending = sending_rate(self._grants, since, now, self.rate * self.share()) / self.share()
        self._end_hold()  # the cut below ends the sample a hold waited for
        self._pause(now, retry_after)
        return self._cut(now, sending * max(0.5, 1.0 - share), "overloaded")

    # -- measurement -------------------------------------------------------------------

    def room(self, now: float) -> bool:
        """Whether one more request may go now (the slow start's window, a spent limit's
        probes: ``worker.run.slowstart``, ``worker.run.spent``)."""
        return all(window is None or window.room(now) for window in (self.start, self._spent))

    def _answer(self, now: float, sent: float, kind: int) -> Change | None:
        spent, taken = self._spent, math.inf
        if spent is not None and spent.answered(now, sent, kind == OK):
            self._spent = None  # open again: what it took over the second before is its rate
            taken = self._recent.rate_before(OK, spent.opened(sent)) / self.share()
        self._recent.add(now, kind, sent)
        start = self.start
        if start is not None:
            start.answered(sent, kind == OK, grow=self._sample is None)
        if spent is not None:  # (nothing is measured while it is probed)
            return self._cut(now, taken, "throttled") if taken < NEAR * self.rate else None
        if sent <= self._cut_at:
            return None  # sent at the old rate, before the last cut: says nothing of the new
        sample = self._sample
        if sample is not None:
            sample.answered(sent, kind == THROTTLED)
            if self._held_from is None and sample.overwhelmed():
                self._hold(now, sample)
            return (
                self._decide(now, sample)
                if sample.complete(now, lambda: straggling(self._recent, self.patience))
                else None
            )
        if kind == THROTTLED:
            since = (at for at in self._grants if at > sent)
            own = self.rate * self.share()  # a fleet worker measures on its own grants
            limit = None if self.limit is None else self.limit * self.share()  # its own part
            size = sample_size(limit, self.min_sample, self.max_sample)
            self._sample = sample = Sample(sent, size, since, own)
            for early, what in self._recent.sent_after(sent):  # answered before this 429
                sample.answered(early, what == THROTTLED)
            if self.limit is None and sample.grants >= 2 * self.min_sample:
                self._hold(now, sample)  # the first limit met, many sent since: stop, measure
        return None

    def _hold(self, now: float, sample: Sample) -> None:
        """Far over the limit: nothing more is granted until the sample is decided (at
        most ``patience``). A gateway answers 429s at once while accepted requests take
        their time, so the first answers back are 429s whatever the share: deciding on
        them would cut far too deep, and sending on meanwhile only draws more 429s."""
        sample.close()
        self.holds += 1
        self._held_from = self.pause_until
        self.pause_until = max(self.pause_until, now + self.patience)

    def _end_hold(self) -> None:  # the sample it waited for is decided: a real pause stays
        if self._held_from is not None:
            self.pause_until, self._held_from = self._held_from, None

    @property
    def holding(self) -> bool:
        """Whether grants wait for a sample's answers (``_hold``): a pause that ends with it."""
        return self._held_from is not None

    def _decide(self, now: float, sample: Sample) -> Change | None:
        """The grants after a 429 have been answered: cut, pause, or not."""
        self._sample = None
        self._end_hold()
        quick = self._recent.latency(0.9, THROTTLED)
        sample.settle(now, None if quick is None else 2.0 * quick)
        if sample.throttled == 0 and self._recent.share(THROTTLED) < self.noise_share:
            return None  # one isolated 429: its own retry is paced, nothing else
        if self.start is not None and sample.touched():
            return None  # in the slow start: the window set its pace, not the server
        share = self.share()  # what the fleet accepted: this worker's part ÷ its share
        limit = None if self.limit is None else self.limit * share
        accepted = accepted_rate(sample, self._recent, limit, self.rate * share) / share
        if sample.share >= 1.0:  # none taken: probe it one request at a time, no pause
            wait = self._retry_after or self.fallback_pause  # (one over the cap: as if none)
            wait = wait if wait <= self.max_pause else self.fallback_pause
            self._spent = Spent(now, sample.since, self._recent.latency(0.9, OK), wait)
        if accepted >= self.rate:
            return None  # a window spent at the rate it accepts: the next one opens soon
        if self.pause_share < sample.share < 1.0 and self.rate > self.far_over * accepted:
            self._pause(now, self._retry_after)  # far over the limit: every worker waits
        return self._cut(now, accepted, "throttled")

    # -- actions -----------------------------------------------------------------------

    def _pause(self, now: float, retry_after: float | None) -> None:
        wait = self.fallback_pause if retry_after is None else retry_after
        if wait > self.max_pause:
            return  # that attempt fails at once (terminate's rule); nobody else waits
        self.pauses += now + wait > self.pause_until  # begun or extended (metrics)
        self.pause_until = max(self.pause_until, now + wait)

    def _cut(self, now: float, accepted: float, reason: str) -> Change | None:
        old = self.rate
        found = max(self.floor, min(old, accepted))
        # the first cut may go far (10x too fast is common); later ones halve at most: a
        # small sample is noisy, one sent while sessions sat out a Retry-After measures
        # little demand, and a limit that really fell further is followed by the next cut
        step = self.min_cut if self.limit is None else 0.5
        self.rate = max(self.floor, step * old, self.margin * found)
        # what probing starts from: no lower than the rate kept (a cut that would have gone
        # deeper than ``step`` allows was not trusted that far)
        self.limit = max(found, self.rate / self.margin)
        self._cut_at = now
        self._sample = None
        self.start = None  # the rate is measured: no window needed
        return Change(old, self.rate, reason) if self.rate != old else None

    def _probe(self, now: float) -> Change | None:
        """Hold under the found limit, then probe beyond it, doubling the step each second."""
        if self.limit is None or self.rate >= self.ceiling or now - self._updated_at < 0.25:
            return None
        if self._sample is not None or self._spent is not None:
            return None  # a 429 is being measured, or a spent limit probed: no higher yet
        self._updated_at = now
        begin = max(self._cut_at, self.pause_until) + self.hold
        if now < begin:
            return None
        growth = self.probe_step * (2.0 ** min(now - begin, 30.0) - 1.0)
        new = min(self.ceiling, self.margin * self.limit * (1.0 + growth))
        if new < self.ceiling and new < self.rate * 1.01:
            return None  # changes under 1% are not worth a log line
        old, self.rate = self.rate, new
        return Change(old, new, "probing")
