"""The measurements behind every cut of the rate: what the server accepted right after a
429 (the answers of the last second are ``worker.run.recent``'s).

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
from collections import Counter
from collections.abc import Callable, Iterable

from worker.run.recent import OK, Recent

MIN_SPAN = 0.02  # seconds of grants a sample spans at least
OVERWHELMED = 8  # 429s (seven answers in eight) that hold the gate for a sample's answers
REORDER = 0.005  # seconds within which requests sent together may arrive in any order
BURSTY = 1.5  # a sample's granted rate is at most this times the gate's (its bursts)
RECOVERED = 0.25  # a later half with this much fewer 429s than the first: not steady


class Sample:
    """The answers to the ``size`` grants that followed the request granted at ``since``."""

    __slots__ = (
        "after",
        "answers",
        "end",
        "last",
        "late_at",
        "rate",
        "seen",
        "silent",
        "since",
        "size",
        "throttled",
        "times",
    )

    def __init__(
        self, since: float, size: int, granted_since: Iterable[float], rate: float = math.inf
    ) -> None:
        self.since = since
        self.size = size
        self.rate = rate  # the gate's rate as the sample began: what it granted at most
        self.times: list[float] = []  # of the grants counted
        self.silent: list[float] = []  # grant times of those unanswered when decided
        self.last = since  # the latest grant counted
        self.end = math.inf  # the grant time of the last request in the sample, once granted
        self.answers = 0
        self.throttled = 0
        self.after = 0  # 429s to requests granted after the sample's last one
        self.seen: list[tuple[float, bool]] = []  # (grant time, a 429?) of each answer
        self.late_at = math.inf  # when a missing answer is a straggler, once asked
        for at in granted_since:  # granted while that 429 was on its way back
            self.granted(at)

    def granted(self, at: float) -> None:
        """A grant at ``at``; counts while the sample still takes grants: ``size`` of them,
        over ``MIN_SPAN`` at least (requests sent within a few milliseconds of each other
        reach the server in any order, so a span of a few of them says little)."""
        if at > self.since and self.end == math.inf:
            self.times.append(at)
            self.last = at
            if self.grants >= self.size and at - self.since >= MIN_SPAN:
                self.end = at

    @property
    def grants(self) -> int:
        """How many grants the sample counts."""
        return len(self.times)

    def answered(self, sent: float, throttled: bool) -> bool:
        """An answer to a request granted at ``sent``; True when it belongs to the sample."""
        if not self.since < sent <= self.end:
            self.after += throttled and sent > self.end
            return False
        self.answers += 1
        self.throttled += throttled
        self.seen.append((sent, throttled))
        return True

    def overwhelmed(self) -> bool:
        """``OVERWHELMED`` 429s, seven answers in eight, or ``OVERWHELMED`` 429s to requests
        sent after the sample was whole: far over the limit, so no more should be sent until
        the sample is decided (``close``). A gateway answers 429s at once while accepted
        requests take their time: a sample of both waits for the slow ones while the quick
        429s free their places for more (measured: 135 requests in 0.1 s at 10x the limit,
        4% of a run 429s, before the later 429s counted)."""
        if self.after >= OVERWHELMED:
            return True
        return self.throttled >= OVERWHELMED and 8 * self.throttled >= 7 * self.answers

    def touched(self) -> bool:
        """At most one 429 in eight, and no quick ones after it: the limit was touched, not
        crossed by far. In the slow start the window (or a stall of the run's first moments)
        set how fast such a sample went, not the server: 16 grants, 15 of them 70 ms after
        the first, read as 230/s at --rate 1000 against a limit of 500; the cut to that
        took seconds to climb back (0.81 of the limit over the run)."""
        return 8 * self.throttled <= self.grants and not self.overwhelmed()

    def close(self) -> None:
        """Take no more grants: the sample is the grants made so far."""
        if self.end == math.inf:
            self.end = self.last

    def complete(self, now: float, late: Callable[[], float]) -> bool:
        """Every grant of the sample answered; or, once ``late()`` seconds have passed since
        the last one was sent, at least half of them (a request that hangs, or a reset one
        that never reports, must not hold the decision while the run goes on too fast)."""
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

    def settle(self, now: float, quick: float | None) -> None:
        """Decided at ``now``: a grant still unanswered more than ``quick`` seconds after
        it was made (twice the time 429s take to come back; None: unknown) is not a 429.

        A gateway often answers a 429 at once while real work takes its time, so the first
        answers back are not a fair half of a sample: the grants that stay silent past the
        time a 429 would have come back count as accepted."""
        if quick is None:
            return
        missing = Counter(self.times)
        missing.subtract(sent for sent, _ in self.seen)
        self.silent = [at for at, n in missing.items() for _ in range(n) if now - at > quick]

    @property
    def share(self) -> float:
        """The share of 429s among the answers (and the silent grants, see ``settle``) to
        grants made ``REORDER`` seconds or more after the 429's own: those sent with it
        reach the server in any order, and it may have taken some of them first (a spent
        window looks open at its edge)."""
        cut = self.since + REORDER
        later = [throttled for sent, throttled in self.seen if sent >= cut]
        if len(later) < OVERWHELMED:
            return self.throttled / max(1, self.answers + len(self.silent))
        return sum(later) / (len(later) + sum(1 for at in self.silent if at >= cut))

    def steady(self) -> bool:
        """Whether the server turned away about as many of the sample's later half as of
        its first, and a real share of it but not nearly all: a bucket that stays empty,
        whose short measure is what it accepts from now on. A sample whose 429s stop
        part-way saw a window open again (or a burst), one of nearly all 429s a window
        spent, and a few 429s say little: then what the last second accepted says more."""
        cut = self.since + REORDER
        marks = sorted(
            [(sent, throttled) for sent, throttled in self.seen if sent >= cut]
            + [(at, False) for at in self.silent if at >= cut]
        )
        if len(marks) < OVERWHELMED:
            return False
        half = len(marks) // 2
        first = sum(t for _, t in marks[:half]) / half
        later = sum(t for _, t in marks[half:]) / (len(marks) - half)
        return RECOVERED <= later <= 1.0 - RECOVERED and later >= first - RECOVERED

    def accepted_rate(self) -> float:
        """Requests per second the server accepted while the sample was sent: the granted
        rate times the share not throttled (0 before any grant: nothing to measure).

        The granted rate is taken at most ``BURSTY`` x ``rate`` (the gate's when the sample
        began): the gate grants a few at once, so a sample closed after a few milliseconds
        (``close``) may span next to nothing, and 25 grants in half a millisecond are not
        50,000/s."""
        if not self.grants:
            return 0.0
        granted = self.grants / (self.last - self.since)  # a grant counts only after since
        return min(granted, BURSTY * self.rate) * (1.0 - self.share)


def sample_size(limit: float | None, least: int, most: int) -> int:
    """Answers measured after a 429: twice ``least`` before any limit is known (react fast);
    then a fifth of a second of ``limit`` (the requests/s found), ``least`` to ``most`` (a
    small sample's noise misleads)."""
    if limit is None:
        return 2 * least
    return min(most, max(least, int(limit / 5)))


def accepted_rate(sample: Sample, recent: Recent, limit: float | None, rate: float) -> float:
    """What the server accepted while ``sample`` was sent (a bucket was empty from the 429
    on): when it kept turning away the same share to the end, that is the measure. A
    server that counts whole windows (or a sliding log) accepts nothing more once one is
    spent, and then all at once: when the sample's 429s stopped part-way or never let up,
    what it accepted over the last second is the measure (``limit``: the one found so far,
    ``rate``: the granted rate)."""
    short = sample.accepted_rate()
    if sample.whole and sample.steady():  # (steady: some accepted, so short > 0)
        return short  # the bucket's burst long spent: the last second would overstate
    window = recent.counts[OK] / recent.span
    if limit is not None:  # a bucket's burst can swell the last second: trust it
        window = min(window, max(1.05 * limit, 0.9 * rate))  # up to a rise
    if not sample.whole or limit is not None:
        return max(short, window)  # early (a few 429s say "over", not how far), or later
    return short or window
