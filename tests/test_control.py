"""The rate controller's decisions, on a fake clock: which answer does what, in microseconds."""

from __future__ import annotations

import itertools

import pytest

from worker.run.control import RateController


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _controller(ceiling: float = 300.0, **kwargs: float) -> tuple[RateController, FakeClock]:
    clock = FakeClock()
    return RateController(ceiling, clock=clock, **kwargs), clock  # type: ignore[arg-type]


def _answers(control: RateController, clock: FakeClock, kinds: str, rate: float) -> list[str]:
    """Grant and answer one request per character, ``rate`` a second: ``.`` accepted,
    ``T`` a 429 (Retry-After 1), ``O`` a 503 with Retry-After 1. Returns the change reasons."""
    reasons = []
    for kind in kinds:
        clock.now += 1 / rate
        control.granted()
        if kind == "T":
            change = control.on_throttled(1.0)
        elif kind == "O":
            change = control.on_overloaded(1.0)
        else:
            change = control.on_accepted()
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


def test_most_answers_429_pauses_every_worker_until_retry_after() -> None:
    control, clock = _controller(3000.0)
    reasons = _answers(control, clock, "." * 10 + "T" * 17, 3000.0)
    assert reasons == ["throttled"]
    assert control.pause_until == pytest.approx(clock.now + 1.0)
    assert control.rate == 300.0  # at most a tenth of the rate in one cut


def test_retry_after_over_the_cap_pauses_nobody() -> None:
    control, clock = _controller(100.0, max_pause=120.0)
    for _ in range(40):
        clock.now += 0.01
        control.granted()
        control.on_throttled(3600.0)
    assert control.pause_until < clock.now
    assert control.rate < 100.0  # the rate is still lowered


def test_a_429_without_retry_after_pauses_for_the_fallback() -> None:
    control, clock = _controller(100.0, fallback_pause=0.5)
    for _ in range(40):
        clock.now += 0.01
        control.granted()
        control.on_throttled(None)
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
    for _ in range(64):  # 64 requests in flight
        control.granted()
    reasons = _answers(control, clock, "." * 20 + "T" * 40, 600.0)
    assert reasons == ["throttled"]  # one wave, one cut
    cut = control.rate
    for _ in range(20):  # the rest of the wave, sent at the old rate
        clock.now += 0.001
        assert control.on_throttled(1.0) is None
    assert control.rate == cut


def test_repeated_waves_and_pauses_do_not_cascade_to_the_floor() -> None:
    control, clock = _controller(1000.0)
    credit, lowest = 10.0, 1000.0  # a server that accepts 100/s, bucket 10
    for _ in range(3000):
        clock.now = max(clock.now + 1 / control.rate, control.pause_until)
        credit = min(10.0, credit + 100.0 / control.rate)
        control.granted()
        if credit >= 1.0:
            credit -= 1.0
            control.on_accepted()
        else:
            control.on_throttled(1.0)
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
    assert _answers(control, clock, "." * 100 + "T" + ".T" * 8, 400.0) == ["throttled"]
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
