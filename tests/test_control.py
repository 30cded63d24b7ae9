"""The rate controller's decisions, on a fake clock: which answer does what, in microseconds."""

from __future__ import annotations

import itertools
import math

import pytest

from worker.run.control import RateController
from worker.run.recent import OK, THROTTLED, Recent
from worker.run.sample import Sample


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _controller(ceiling: float = 300.0, **kwargs: float) -> tuple[RateController, FakeClock]:
    clock = FakeClock()
    return RateController(ceiling, clock=clock, **kwargs), clock  # type: ignore[arg-type]


def _answers(
    control: RateController, clock: FakeClock, kinds: str, rate: float, latency: float = 0.0
) -> list[str]:
    """Grant and answer one request per character, ``rate`` a second: ``.`` accepted,
    ``T`` a 429 (Retry-After 1), ``O`` a 503 with Retry-After 1; each answer comes
    ``latency`` after its grant. Returns the change reasons."""
    reasons = []
    for kind in kinds:
        clock.now += 1 / rate
        sent = clock.now - latency
        control.granted(sent)
        if kind == "T":
            change = control.on_throttled(1.0, sent)
        elif kind == "O":
            change = control.on_overloaded(1.0, sent)
        else:
            change = control.on_accepted(sent)
        if change is not None:
            reasons.append(change.reason)
    return reasons


def test_clean_answers_keep_the_ceiling() -> None:
    control, clock = _controller()
    assert _answers(control, clock, "." * 3000, 300.0) == []
    assert control.rate == 300.0 and control.limit is None


def test_a_429_measures_what_the_server_accepted_and_cuts_to_just_under_it() -> None:
    control, clock = _controller(600.0)
    _answers(control, clock, "." * 600, 600.0)
    # the server's bucket is empty: from the first 429 on it accepts one in two
    reasons = _answers(control, clock, "T" + ".T" * 16, 600.0)
    assert reasons == ["throttled"]
    assert control.limit == pytest.approx(300.0, rel=0.1)
    assert control.rate == pytest.approx(0.97 * control.limit)
    assert control.pause_until < clock.now  # half accepted: the cut is enough, nobody waits


def test_a_fleet_worker_measures_its_share_and_cuts_the_fleet_s_rate() -> None:
    """The same wave seen by one of three workers (a third of the fleet's grants, 200/s of
    600): what it measures, ÷ its share, is what the fleet's rate is cut to."""
    clock = FakeClock()
    control = RateController(600.0, clock=clock, share=lambda: 1 / 3)
    _answers(control, clock, "." * 200, 200.0)
    reasons = _answers(control, clock, "T" + ".T" * 16, 200.0)
    assert reasons == ["throttled"]
    assert control.limit == pytest.approx(300.0, rel=0.1)  # the fleet's, not its 100/s
    assert control.rate == pytest.approx(0.97 * control.limit)


def test_most_answers_429_pauses_every_worker_until_retry_after() -> None:
    control, clock = _controller(3000.0)
    # the first 429, one accepted, then eight 429s in a row: decided at once, far over
    reasons = _answers(control, clock, "." * 10 + "T." + "T" * 8, 3000.0)
    assert reasons == ["throttled"]
    assert control.pause_until == pytest.approx(clock.now + 1.0)
    assert control.rate < 3000.0 / 8  # cut to about what was accepted (one in nine)
    assert (control.pauses, control.holds) == (1, 1)  # eight in a row held first (metrics)


def test_retry_after_over_the_cap_pauses_nobody() -> None:
    control, clock = _controller(100.0, max_pause=120.0)
    for _ in range(40):
        clock.now += 0.01
        control.granted(clock.now)
        control.on_throttled(3600.0, clock.now)
    assert control.pause_until < clock.now and control.pauses == 0
    assert control.rate < 100.0  # the rate is still lowered


def test_a_429_without_retry_after_pauses_for_the_fallback() -> None:
    control, clock = _controller(100.0, fallback_pause=0.5)
    for i in range(40):
        clock.now += 0.01
        control.granted(clock.now)
        if i == 1:  # one accepted among them: most (not all) 429s, far over
            control.on_accepted(clock.now)
        else:
            control.on_throttled(None, clock.now)
        if control.pause_until > clock.now:
            break
    assert control.pause_until == pytest.approx(clock.now + 0.5)


def test_an_isolated_429_changes_nothing() -> None:
    control, clock = _controller()
    _answers(control, clock, "." * 300, 300.0)
    assert _answers(control, clock, "T" + "." * 300, 300.0) == []
    assert control.rate == 300.0 and control.pause_until < clock.now


def test_answers_in_flight_at_a_cut_do_not_cut_again() -> None:
    control, clock = _controller(600.0)
    in_flight = [clock.now + i / 600.0 for i in range(1, 65)]  # sent before the wave came back
    for sent in in_flight:
        control.granted(sent)
    clock.now = in_flight[-1]
    reasons = _answers(control, clock, "." * 20 + "T" * 17, 600.0)
    assert reasons == ["throttled"]
    cut = control.rate
    for sent in in_flight:  # their 429s come back after the cut: sent at the old rate
        clock.now += 0.001
        assert control.on_throttled(1.0, sent) is None
    assert control.rate == cut


def _granted_ahead(latency: float) -> tuple[RateController, FakeClock, list[float]]:
    """A second of clean answers at 600/s, ``latency`` each, then 17 more requests granted
    and not yet answered: the first of them will be the 429 that arms a sample."""
    control, clock = _controller(600.0)
    _answers(control, clock, "." * 600, 600.0, latency=latency)
    grants = [clock.now + (i + 1) / 600.0 for i in range(17)]
    for sent in grants:
        control.granted(sent)
    return control, clock, grants


def test_the_sample_waits_for_every_request_sent_after_the_429() -> None:
    """A 429 is often answered faster than a request the server works on: the answers that
    arrive first are not the sample; every grant after the 429's is."""
    control, clock, grants = _granted_ahead(latency=0.02)
    clock.now = grants[-1] + 0.01
    assert control.on_throttled(1.0, grants[0]) is None  # arms the sample
    for sent in grants[3::3]:  # a third were 429s, and they come back first
        assert control.on_throttled(1.0, sent) is None
    slow = [sent for i, sent in enumerate(grants) if i % 3 and i]
    for sent in slow[:-1]:
        clock.now += 0.002
        assert control.on_accepted(sent) is None
    change = control.on_accepted(slow[-1])  # the last one: now it is decided
    assert change is not None and change.reason == "throttled"
    assert control.limit == pytest.approx(600.0 * 9 / 14, rel=0.05)  # 5 of the last 14


def test_an_answer_that_never_comes_does_not_hold_the_decision() -> None:
    """Once thrice the usual answer time has passed, a missing answer is a straggler (a
    request that hangs): the sample is decided on the others."""
    control, clock = _controller(600.0)
    _answers(control, clock, "." * 600, 600.0, latency=0.01)  # nine in ten within 10 ms
    _answers(control, clock, "T", 600.0)
    hung = clock.now + 1 / 600.0
    control.granted(hung)  # its answer never comes
    clock.now = hung
    assert _answers(control, clock, ".T" * 7 + ".", 600.0) == []
    clock.now += 0.02  # not yet thrice 10 ms since the last grant
    assert _answers(control, clock, ".", 600.0) == []
    clock.now += 0.009  # now it is (thrice, not four times)
    assert _answers(control, clock, "T", 600.0) == ["throttled"]


def test_a_window_that_is_spent_is_measured_over_the_last_second() -> None:
    """A server counting fixed windows accepts nothing more once a window is spent: the
    answers after the 429 say 0/s, the last second says what it really accepts."""
    control, clock = _controller(600.0)
    _answers(control, clock, "." * 300, 600.0)  # 300 accepted in half a second
    assert _answers(control, clock, "T" * 17, 600.0) == ["throttled"]
    assert control.limit == pytest.approx(300.0, rel=0.05)


@pytest.mark.parametrize("share", [1.0, 1 / 3])
def test_a_wave_of_nothing_but_429s_is_probed_one_request_at_a_time(share: float) -> None:
    """A fixed window (300 a window, opening at 100.35 and 101.35) spent at 600/s: the
    last second holds two windows' tails (210 + 300), so the first cut keeps too much; no
    pause, but until the next window opens one probe at a time goes, a sixteenth of the
    Retry-After apart; the first one accepted cuts to what the second before took. The
    same seen by one worker of a fleet that sends ``share`` of the requests."""
    clock = FakeClock()
    control = RateController(600.0, clock=clock, share=lambda: share)
    _answers(control, clock, "." * round(510 * share), 600.0 * share)  # 100.0-100.85
    assert _answers(control, clock, "T" * 17, 600.0 * share) == ["throttled"]
    assert control.rate == pytest.approx(0.97 * 510) and control.pause_until < clock.now
    probes = []
    while not probes or probes[-1] < 101.35:  # every millisecond, a request waits to go
        clock.now += 0.001
        if control.room(clock.now):
            control.granted(clock.now)
            probes.append(clock.now)
            if clock.now < 101.35:
                assert control.on_throttled(1.0, clock.now) is None
    assert 4 <= len(probes) <= 9  # about 0.47 s / (1 s / 16), instead of 0.47 s x 495/s
    assert all(b - a >= 1 / 16 for a, b in itertools.pairwise(probes))
    change = control.on_accepted(probes[-1])  # open again: the second before took 300
    assert change is not None and change.reason == "throttled"
    assert control.rate == pytest.approx(0.97 * 300, rel=0.03)
    assert control.room(clock.now) and control.pause_until < clock.now


@pytest.mark.parametrize(
    ("retry_after", "latency", "gap"),
    [(2.0, 0.0, 2.0 / 16), (60.0, 0.0, 60.0 / 16), (60.5, 0.0, 1.0 / 16), (1.0, 0.2, 0.2)],
)
def test_a_spent_limit_is_probed_a_sixteenth_of_retry_after_apart(
    retry_after: float, latency: float, gap: float
) -> None:
    """Far over the limit (3000/s granted, 300 taken), a wave of nothing but 429s pauses
    nobody; the probes go a sixteenth of its Retry-After apart (of the fallback second when
    that is over the one-minute cap), or the time accepted answers take if longer."""
    control, clock = _controller(3000.0)
    _answers(control, clock, "." * 300, 3000.0, latency=latency)
    while control.rate == 3000.0:  # 429s until the wave is decided
        clock.now += 1 / 3000
        control.granted(clock.now)
        control.on_throttled(retry_after, clock.now)
    assert control.rate == 300.0 and control.pause_until < clock.now  # a tenth: no pause
    assert control.room(clock.now)  # the first probe at once
    control.granted(clock.now)
    control.on_throttled(retry_after, clock.now)
    turned_away = clock.now
    while not control.room(clock.now):
        clock.now += 0.001
    assert clock.now - turned_away == pytest.approx(gap, abs=0.0011)


def test_a_probe_over_the_limit_is_cut_without_pausing_anyone() -> None:
    control, clock = _controller(600.0)
    _answers(control, clock, "." * 300 + "T" * 9, 600.0)  # the first wave: none accepted
    clock.now += 0.5  # (its probes meanwhile: see test_a_server_that_took_none_...)
    for _ in range(12):  # 3 s at the granted rate: hold, then probe above
        _answers(control, clock, "." * int(control.rate / 4), control.rate)
    probe = control.rate
    assert 310.0 < probe < 400.0
    # a spent window: the rest of it is 429s, decided on the first of them
    assert _answers(control, clock, "T" * 9, probe) == ["throttled"]
    assert control.pause_until < clock.now and control.rate < probe


def test_no_probing_while_a_429_is_measured() -> None:
    control, clock = _controller(600.0)
    _answers(control, clock, "." * 300 + "T" * 9, 600.0)
    clock.now += 0.5
    _answers(control, clock, "." * 800, control.rate)
    assert control.limit is not None and control.rate > control.limit  # probing
    _answers(control, clock, "T", control.rate)  # arms a sample
    before = control.rate
    for _ in range(4):  # a second of answers to requests sent before it
        clock.now += 0.25
        assert control.on_accepted(clock.now - 2.0) is None
    assert control.rate == before


def test_repeated_waves_and_pauses_do_not_cascade_to_the_floor() -> None:
    control, clock = _controller(1000.0)
    credit, lowest = 10.0, 1000.0  # a server that accepts 100/s, bucket 10
    for _ in range(3000):
        clock.now = max(clock.now + 1 / control.rate, control.pause_until)
        credit = min(10.0, credit + 100.0 / control.rate)
        control.granted(clock.now)
        if credit >= 1.0:
            credit -= 1.0
            control.on_accepted(clock.now)
        else:
            control.on_throttled(1.0, clock.now)
        lowest = min(lowest, control.rate)
    assert lowest >= 0.6 * 100.0 > control.floor
    assert control.rate == pytest.approx(100.0, rel=0.2)


def test_5xx_with_retry_after_below_a_quarter_pauses_and_cuts_nothing() -> None:
    control, clock = _controller(400.0)
    reasons = _answers(control, clock, ("." * 19 + "O") * 200, 400.0)
    assert reasons == []
    assert control.rate == 400.0 and control.pause_until < clock.now


def test_5xx_with_retry_after_over_a_quarter_pauses_and_cuts() -> None:
    control, clock = _controller(400.0)
    reasons = _answers(control, clock, "." * 400 + "O." * 200, 400.0)
    assert reasons == ["overloaded"]
    assert control.pause_until > clock.now
    assert control.rate < 400.0


def test_after_a_cut_the_rate_holds_then_probes_doubling_each_second() -> None:
    control, clock = _controller(1000.0)
    assert _answers(control, clock, "." * 100 + "T" + "..T" * 8, 400.0) == ["throttled"]
    assert control.pause_until < clock.now  # a third were 429s: nobody paused
    cut, limit = control.rate, control.limit
    assert limit is not None
    rates = []
    for _ in range(16):  # 0.5 s steps of clean answers at the granted rate
        _answers(control, clock, "." * int(control.rate / 2), control.rate)
        rates.append(control.rate)
    assert rates[1] == cut  # held for 1.5 s
    assert rates[3] > cut  # then probing
    steps = [b - a for a, b in itertools.pairwise(rates[3:10])]
    assert all(later > earlier for earlier, later in itertools.pairwise(steps))
    assert rates[-1] == 1000.0  # a limit that was lifted is found again


def test_a_spent_window_is_cut_once_not_again_for_its_last_429s() -> None:
    """A fixed window's 429s run to its end whatever the rate: a probe over the limit is
    cut once, to what the last second accepted; the rest of that window's 429s, sent at
    the new rate, find the last second accepted at least that much, and cut nothing."""
    control, clock = _controller(600.0)
    _answers(control, clock, "." * 300 + "T" * 9, 600.0)
    clock.now += 0.5
    for _ in range(12):  # hold, then probe above the limit found
        _answers(control, clock, "." * int(control.rate / 4), control.rate)
    probe = control.rate
    assert _answers(control, clock, "T" * 9, probe) == ["throttled"]
    cut = control.rate
    assert cut < probe
    assert _answers(control, clock, "T" * 9, cut) == []
    assert control.rate == cut


def test_requests_sent_with_the_429_s_own_do_not_count_in_its_share() -> None:
    """Requests granted within a few milliseconds of each other reach the server in any
    order: the server took these two before the 429's request, they say nothing."""
    sample = Sample(10.0, 16, [10.0 + i / 1000 for i in range(1, 3)])
    for i in range(3, 17):
        sample.granted(10.0 + i * 0.002)
    assert sample.whole
    assert sample.answered(10.001, False) and sample.answered(10.002, False)
    for i in range(3, 17):
        sample.answered(10.0 + i * 0.002, i % 2 == 0)  # one in two
    assert sample.share == pytest.approx(0.5, abs=0.05)
    assert sample.throttled / sample.answers < 0.45  # as counted with the two


def test_an_overload_cut_starts_from_what_was_sent_not_the_granted_rate() -> None:
    """Sessions send at 100/s under a granted 400/s, half of them 5xx with Retry-After:
    the cut takes half of the 100/s sent (the first cut may go to a tenth of the rate)."""
    control, clock = _controller(400.0)
    _answers(control, clock, "." * 100, 100.0)  # a second at 100/s
    reasons = _answers(control, clock, ".OO" * 13, 100.0)  # 26 of the last second's 100
    assert reasons == ["overloaded"]
    assert control.rate == pytest.approx(0.97 * 100.0 * 0.74, rel=0.02)  # not 400 * 0.74
    assert control.pause_until == pytest.approx(clock.now + 1.0)


def test_overload_needs_eight_of_thirty_two_answers_and_waits_two_seconds_after_a_cut() -> None:
    """At the start of a run a few answers are no share: 4 of 12 happen at 5% faults."""
    control, clock = _controller(400.0)
    assert _answers(control, clock, "O" * 7 + "." * 25, 400.0) == []  # 7 of 32: too few
    control, clock = _controller(400.0)
    assert _answers(control, clock, "." * 20 + "O" * 11, 400.0) == []  # 31 answers in all
    assert _answers(control, clock, "O", 400.0) == ["overloaded"]
    cut = control.rate
    clock.now = control.pause_until
    assert _answers(control, clock, "O" * 50, 100.0) == []  # within 2 s of the cut
    clock.now += 1.0
    assert _answers(control, clock, "O" * 40, 100.0) == ["overloaded"]
    assert control.rate < cut


def test_late_overload_answers_to_requests_sent_before_a_cut_are_not_counted() -> None:
    """Requests that hung through a cut and answer 503 + Retry-After seconds later were
    sent at the old rate: they say nothing of the new one, however many they are."""
    control, clock = _controller(400.0)
    assert _answers(control, clock, "." * 20 + "O" * 12, 400.0) == ["overloaded"]
    cut, before = control.rate, clock.now - 0.01
    clock.now += 3.0
    for _ in range(40):
        clock.now += 0.001
        assert control.on_overloaded(1.0, before) is None
    assert control.rate == cut


def test_an_overload_pause_lasts_its_retry_after() -> None:
    control, clock = _controller(400.0)
    for _ in range(32):  # a share: 8 of 32 answers at least
        clock.now += 0.01
        control.granted(clock.now)
        change = control.on_overloaded(2.5, clock.now)
    assert change is not None and control.pause_until == pytest.approx(clock.now + 2.5)


def test_the_sending_rate_counts_since_the_pause_ended() -> None:
    """After a pause, the sending rate is what went out since it ended, not a second's
    grants spread over the pause as well."""
    control, clock = _controller(400.0)
    _answers(control, clock, "." * 400, 400.0)  # a second at 400/s
    control.pause_until = clock.now + 0.5
    clock.now = control.pause_until
    _answers(control, clock, "." * 40, 200.0)  # 0.2 s at 200/s since the pause
    assert "overloaded" in _answers(control, clock, ".OO" * 40, 200.0)
    assert control.rate == pytest.approx(0.97 * 200.0 * 0.75, rel=0.05)  # not from 400/s


def test_a_late_answer_is_judged_by_the_last_second_s_answer_times() -> None:
    recent = Recent(1.0)
    for i in range(10):
        recent.add(1.0 + i / 100, OK, 1.0 + i / 100 - (0.01 if i < 9 else 0.5))
    assert recent.latency(0.9) == pytest.approx(0.5)  # the tenth of ten
    assert recent.latency(0.5) == pytest.approx(0.01)
    assert Recent(1.0).latency(0.9) is None
    assert recent.latency(0.9, THROTTLED) is None  # none of that kind
    assert recent.latency(1.0) == pytest.approx(0.5)  # the slowest
    recent.add(2.5, THROTTLED, 2.45)  # the rest are over a second old now
    assert recent.counts == [0, 1, 0] and recent.share(THROTTLED) == 1.0
    assert recent.latency(0.9) == pytest.approx(0.05)
    assert recent.sent_after(2.44) == [(2.45, THROTTLED)] and recent.sent_after(2.45) == []


def _sample(grants: int, size: int = 16, step: float = 0.002) -> Sample:
    sample = Sample(10.0, size, [])
    for i in range(1, grants + 1):
        sample.granted(10.0 + i * step)
    return sample


def test_a_sample_is_whole_after_its_size_and_twenty_milliseconds() -> None:
    quick = Sample(0.0, 16, [])
    for i in range(1, 17):  # 16 grants in 16 ms: not yet
        quick.granted(i / 1000)
    assert not quick.whole and quick.grants == 16 and quick.last == 0.016
    quick.granted(0.019)
    assert not quick.whole
    quick.granted(0.02)
    assert quick.whole and quick.end == 0.02 and quick.grants == 18
    quick.granted(0.021)  # no more once whole
    assert quick.grants == 18 and quick.end == 0.02
    assert not quick.answered(0.021, True) and not quick.answered(0.0, True)
    assert quick.answered(0.02, True)
    fast = Sample(10.0, 16, [10.0 + i / 10_000 for i in range(1, 20)])
    assert not fast.whole  # 19 grants in 1.9 ms: not twenty
    early = Sample(10.0, 16, [9.99, 10.0, 10.004])  # granted before or with it: not counted
    assert early.grants == 1 and early.last == 10.004
    assert Sample(10.0, 16, []).accepted_rate() == 0.0


def test_a_sample_completes_when_all_answer_or_half_after_a_while() -> None:
    sample = _sample(16)
    never = lambda: 0.05  # noqa: E731
    for i in range(1, 8):
        sample.answered(10.0 + i * 0.002, False)
    assert not sample.complete(10.5, never)  # 7 of 16, however late
    sample.answered(10.016, False)
    assert not sample.complete(10.0 + 0.032 + 0.049, never)  # 8 of 16, not yet late
    assert sample.complete(10.0 + 0.032 + 0.05, never)  # late: decided on half
    for i in range(9, 17):
        sample.answered(10.0 + i * 0.002, False)
    assert sample.complete(10.032, lambda: 99.0)  # all 16: at once
    assert not _sample(10).complete(99.0, never)  # grants still to come


def test_eight_429s_in_nine_answers_overwhelm_and_close_the_sample() -> None:
    sample = _sample(14)
    never = lambda: 99.0  # noqa: E731
    for i in range(1, 8):
        sample.answered(10.0 + i * 0.002, True)
    assert not sample.overwhelmed()  # seven 429s are not yet enough
    sample.answered(10.016, False)
    sample.answered(10.018, True)  # eight 429s of nine answers
    assert sample.overwhelmed()
    sample.close()  # no more grants: the 14 made so far are the sample
    sample.granted(10.03)
    assert sample.grants == 14 and sample.end == 10.028 and sample.whole
    assert not sample.complete(10.1, never)  # 9 of 14 answered
    for i in range(10, 15):
        sample.answered(10.0 + i * 0.002, False)
    assert sample.complete(10.1, never)  # all 14
    mixed = _sample(14)
    for i in range(1, 11):
        mixed.answered(10.0 + i * 0.002, i not in (1, 2))  # 8 of 10: under seven in eight
    assert not mixed.overwhelmed()
    even = _sample(32, size=40)
    for i in range(1, 17):
        even.answered(10.0 + i * 0.002, i not in (1, 2))  # 14 of 16: seven in eight exactly
    assert even.overwhelmed()


def test_eight_429s_after_a_whole_sample_overwhelm_it_whatever_its_own_answers() -> None:
    sample = _sample(16)  # whole: 16 grants, 10.002 to 10.032; none answered yet
    for i in range(8):
        sample.answered(9.9 - i * 0.001, True)  # 429s sent before its 429: nothing
        sample.answered(10.04 + i * 0.001, False)  # accepted after it: nothing
    assert not sample.overwhelmed()
    for i in range(7):
        sample.answered(10.04 + i * 0.001, True)
    assert not sample.overwhelmed() and sample.answers == 0  # seven: not yet
    sample.answered(10.05, True)
    assert sample.overwhelmed() and sample.answers == 0  # eight, none of them its own


def test_a_sample_is_touched_with_one_429_in_eight_at_most() -> None:
    two = _sample(16)
    for i in range(1, 17):
        two.answered(10.0 + i * 0.002, i in (3, 9))
    assert two.touched()  # 2 of 16: one in eight
    few = _sample(15, size=15)
    for i in range(1, 16):
        few.answered(10.0 + i * 0.002, i in (3, 9))
    assert not few.touched()  # 2 of 15: more than one in eight
    three = _sample(16)
    for i in range(1, 17):
        three.answered(10.0 + i * 0.002, i in (3, 9, 12))
    assert not three.touched()


def test_a_gateway_s_quick_429s_hold_the_gate_until_the_slow_answers_are_in() -> None:
    """At twice the limit a gateway answers the 429s at once and the accepted requests
    50 ms later: the first answers back are all 429s. The gate holds (no grants) until the
    sample's answers are in, then cuts to what was accepted, half, and releases at once."""
    control, clock = _controller(600.0)
    sent = [(i + 1) / 600 for i in range(40)]
    for at in sent[:12]:  # the first 429 came for the grant at 0; then half are accepted
        control.granted(at)
    clock.now = sent[11]
    control.on_throttled(1.0, 0.0)  # the sample: the grants after 0 (12 so far)
    assert not control.holding  # too few sent since to stop on one 429
    for at in sent[12:]:
        control.granted(at)
    throttled = [at for n, at in enumerate(sent) if n % 2 == 0]
    accepted = [at for n, at in enumerate(sent) if n % 2 == 1]
    for at in throttled[:8]:
        clock.now = at + 0.001
        control.on_throttled(1.0, at)
    assert control.holding and control.pause_until == pytest.approx(clock.now + 1.0)
    changes = [control.on_throttled(1.0, at) for at in throttled[8:]]
    assert control.holding and changes == [None] * len(changes)
    clock.now = sent[-1] + 0.05
    changes = [control.on_accepted(at) for at in accepted]
    assert [c.reason for c in changes if c is not None] == ["throttled"]
    assert not control.holding and control.pause_until < clock.now  # nobody else waits
    assert (control.holds, control.pauses) == (1, 0)
    assert control.rate == pytest.approx(0.97 * 300.0, rel=0.1)


def test_the_run_s_first_429_holds_at_once_when_many_were_sent_since() -> None:
    """No limit known yet, and 16 or more granted after the 429's own request: the gate
    stops at once, while those answers come in (a client loaded at 3000/s reads its answers
    late, and every grant meanwhile is one more 429)."""
    control, clock = _controller(3000.0)
    for i in range(20):
        control.granted((i + 1) / 3000)
    clock.now = 0.01
    control.on_throttled(1.0, 1 / 3000)  # 19 granted since
    assert control.holding and control.pause_until == pytest.approx(1.01)
    later, clock2 = _controller(3000.0, limit=300.0)  # a limit found: maybe a probe's 429
    for i in range(20):
        later.granted((i + 1) / 3000)
    clock2.now = 0.01
    later.on_throttled(1.0, 1 / 3000)
    assert later._sample is not None and later._sample.grants == 19  # measured, not held
    assert not later.holding


def test_the_accepted_rate_is_the_granted_rate_times_the_share_accepted() -> None:
    sample = _sample(20, step=0.005)  # 20 grants over 0.1 s: 200/s
    for i in range(1, 21):
        sample.answered(10.0 + i * 0.005, i % 4 == 0)  # one in four throttled
    assert sample.share == pytest.approx(0.25, abs=0.02)
    assert sample.accepted_rate() == pytest.approx(200.0 * 0.75, rel=0.03)


@pytest.mark.parametrize(("rate", "trusted"), [(110.0, 105.0), (150.0, 135.0)])
def test_a_burst_in_the_last_second_is_trusted_up_to_the_limit_or_near_the_rate(
    rate: float, trusted: float
) -> None:
    """A bucket with a second's burst lets the last second accept three times its limit:
    that count vouches for 1.05x the limit found, or 0.9x the rate (a limit that rose)."""
    control, clock = _controller(200.0)
    assert _answers(control, clock, "." * 200 + "T" + ".T" * 8, 200.0) == ["throttled"]
    assert control.limit == pytest.approx(100.0, rel=0.1)
    control.limit = 100.0
    clock.now += 2.0
    _answers(control, clock, "." * 300, 300.0)  # the burst: 300 accepted in a second
    control.rate = rate
    assert _answers(control, clock, "T" * 9, rate) == ["throttled"]
    assert control.rate == pytest.approx(0.97 * trusted)


def test_answers_that_came_before_the_429_s_own_join_its_sample() -> None:
    """Requests granted after the 429's may be answered before it: they are in its
    sample, and without them it would wait for answers that already came."""
    control, clock, grants = _granted_ahead(latency=0.05)
    clock.now = grants[-1] + 0.001
    for sent in grants[1:9]:  # answered first: accepted
        assert control.on_accepted(sent) is None
    assert control.on_throttled(1.0, grants[0]) is None  # the 429 that arms the sample
    for sent in grants[9:16]:
        assert control.on_throttled(1.0, sent) is None
    change = control.on_throttled(1.0, grants[16])  # the sixteenth: decided now
    assert change is not None and change.reason == "throttled"
    assert control.limit == pytest.approx(600.0 * 8 / 16, rel=0.15)  # 8 of 16 accepted


def test_an_isolated_429_under_little_demand_cuts_nothing() -> None:
    """Sending 200/s under a granted 300/s, one 429 and nothing else: no cut, although
    the sample's rate (200/s) is under the granted one."""
    control, clock = _controller(300.0)
    _answers(control, clock, "." * 400, 200.0)
    assert _answers(control, clock, "T" + "." * 100, 200.0) == []
    assert control.rate == 300.0


def test_later_cuts_halve_at_most_and_never_go_under_the_floor() -> None:
    control, clock = _controller(100.0)  # floor 1/s
    assert _answers(control, clock, "T" * 9, 100.0) == ["throttled"]  # nothing accepted
    assert control.rate == 10.0  # the first cut: a tenth at most
    rates = [control.rate]
    for _ in range(4):  # one accepted after 2 s, then a wave of 429s: halving, then the floor
        clock.now += 2.0
        for answers in (".", "T" * 9):  # each a cut: the last second took 1/s
            _answers(control, clock, answers, control.rate)
            rates.append(control.rate)
    assert rates[:5] == [10.0, 5.0, 2.5, 1.25, 1.0] and min(rates) == control.floor == 1.0
    clock.now += 2.0
    assert _answers(control, clock, "." + "T" * 9, 1.0) == []  # at the floor: no change to tell


def test_a_probe_tells_its_old_and_new_rate_and_stops_at_the_ceiling() -> None:
    control, clock = _controller(400.0)
    assert _answers(control, clock, "." * 100 + "T" + "..T" * 5 + ".", 400.0) == ["throttled"]
    changes = []
    for _ in range(40):
        clock.now += 0.25
        control.granted(clock.now)
        change = control.on_accepted(clock.now)
        if change is not None:
            changes.append(change)
    assert changes and all(c.reason == "probing" and c.new > c.old for c in changes)
    assert all(a.new == b.old for a, b in itertools.pairwise(changes))
    assert changes[-1].new == control.rate == 400.0  # the ceiling, and no change after it


def test_at_the_start_of_a_run_the_sending_rate_counts_from_the_first_grant() -> None:
    control, clock = _controller(400.0)
    _answers(control, clock, "." * 30, 200.0)  # the run's first 0.15 s
    assert _answers(control, clock, ".OO" * 7, 200.0) == ["overloaded"]  # 14 of 51
    assert 130.0 < control.rate < 160.0  # about 0.97 x 200/s x 0.75, not a 1 s average


def test_a_sample_granted_in_a_burst_is_measured_at_the_gate_s_rate_at_most() -> None:
    """The gate grants a few at once: 25 grants within half a millisecond, closed by a
    hold, are not 50,000/s; at 3000/s granted (and its bursts: 1.5x) and 76% throttled,
    1080/s were accepted at most."""
    grants = [10.0 + i / 50_000 for i in range(1, 26)]
    for rate, accepted in ((3000.0, 4500 * 6 / 25), (math.inf, 50_000 * 6 / 25)):
        sample = Sample(10.0, 16, grants, rate)
        sample.close()
        for i in range(1, 26):
            sample.answered(10.0 + i / 50_000, i % 4 != 0)  # 19 of 25 throttled
        assert sample.accepted_rate() == pytest.approx(accepted, rel=0.01)
    assert Sample(10.0, 16, [10.0, 10.0], 3000.0).accepted_rate() == 0.0  # none after 10.0


def test_an_overload_cut_during_a_hold_ends_the_hold() -> None:
    """A hold waits for its sample; an overload cut drops that sample, so the hold must
    end with it, or the gate would poll every pause from then on and never hold again."""
    control, clock = _controller(3000.0)
    _answers(control, clock, "." * 40, 3000.0)  # enough answers for a share of 5xx
    for i in range(20):
        control.granted(clock.now + (i + 1) / 3000)
    clock.now += 0.01
    control.on_throttled(1.0, clock.now - 0.01 + 1 / 3000)  # the run's first 429: a hold
    assert control.holding
    clock.now += 2.5  # past the 2 s after any cut; now the service fails everything
    changes = [control.on_overloaded(1.0, clock.now) for _ in range(40)]
    assert any(c is not None and c.reason == "overloaded" for c in changes)
    assert not control.holding
    assert control.pause_until == pytest.approx(clock.now + 1.0)
