"""What a sample of the grants after a 429 says (worker/run/sample.py): which grants were
silent, whether the server stayed steady, what it accepted, and when an answer is late.
Pure functions on made-up grant and answer times."""

from __future__ import annotations

import math

import pytest

from worker.run.recent import OK, THROTTLED, Recent, straggling
from worker.run.sample import REORDER, Sample, accepted_rate

SINCE = 10.0  # the 429's own grant time in every sample here


def _sample(pattern: str, *, step: float = 0.002, rate: float = math.inf) -> Sample:
    """Grants ``step`` apart after SINCE (the first a REORDER later), answered as
    ``pattern`` says: ``T`` a 429, ``.`` accepted, ``-`` not answered."""
    first = SINCE + REORDER
    times = [first + i * step for i in range(len(pattern))]
    sample = Sample(SINCE, len(pattern), times, rate)
    for at, kind in zip(times, pattern, strict=True):
        if kind != "-":
            sample.answered(at, kind == "T")
    return sample


@pytest.mark.parametrize(
    ("pattern", "steady"),
    [
        ("T.T.T.T.T.T.T.T.", True),  # a bucket at twice its rate, to the end
        ("TTTTTTTT........", False),  # a window that opened again part-way
        ("TTTTTTTTTTTTTTTT", False),  # a window spent: nearly all 429s
        ("T......T........", False),  # a few 429s say little
        ("TT..TT..T...T...", True),  # 0.5 then 0.25: still turned away, within a quarter
        ("TTTTTT..TT......", False),  # 0.75 then 0.25: recovered
        ("T.T.T.TTT.T.T.TT", True),  # 0.625 and 0.625
        ("TTTTTTTTTTTTTT..", True),  # later half three quarters: the top of the band
        ("TTTTTTTTTTTTTTT.", False),  # later half 7 of 8: a window, not a bucket
        ("T.T.T.T", False),  # fewer answers than OVERWHELMED: no pattern to see
    ],
)
def test_steady_means_the_same_share_turned_away_to_the_end(pattern: str, steady: bool) -> None:
    assert _sample(pattern).steady() is steady


def test_steady_needs_the_later_half_within_a_quarter_of_the_first() -> None:
    assert _sample("TTTTTTTT..T...T.").steady() is False  # 1.0 then 0.25: recovered
    assert _sample("TTTTTT....T..T.T").steady() is False  # 0.75 then 0.375: recovered
    assert _sample("TTTT..T...T..T.T").steady() is True  # 0.625 then 0.375: within


def test_steady_leaves_out_answers_sent_with_the_429_and_counts_silent_grants() -> None:
    early = Sample(SINCE, 16, [SINCE + 0.0005 * i for i in range(1, 9)])
    for i in range(1, 9):  # sent with the 429: reach the server in any order
        early.answered(SINCE + 0.0005 * i, i % 2 == 0)  # half 429s: steady if counted
    assert len(early.seen) == 8 and early.steady() is False  # nothing after REORDER
    silent = _sample("T.T.T.T.--------")
    assert silent.steady() is True  # the 8 answers alone: half 429s in each half
    silent.settle(SINCE + 1.0, 0.01)  # the 8 unanswered are long silent: accepted
    assert len(silent.silent) == 8
    assert silent.steady() is False  # first half 0.5, later 0: recovered
    tail = _sample("T.T.T.T.T...----")
    tail.settle(SINCE + 1.0, 0.01)
    assert tail.steady() is False  # later half 1 of 8: the silent four are accepted


def test_settle_counts_as_accepted_only_the_grants_silent_past_quick() -> None:
    sample = _sample("TTTT----")  # grants at 10.005, .007, ..., .019
    sample.settle(10.0, None)  # how long 429s take is unknown: nothing is silent
    assert sample.silent == []
    sample.settle(10.0175, 0.004)  # 10.013 is 4.5 ms old, 10.015 only 2.5 ms
    assert sample.silent == pytest.approx([10.013])
    sample.settle(10.013 + 0.004, 0.004)
    assert sample.silent == []  # exactly 'quick' old is not yet silent
    sample.settle(10.03, 0.004)
    assert sample.silent == pytest.approx([10.013, 10.015, 10.017, 10.019])
    assert sample.share == pytest.approx(4 / 8)


def test_a_grant_exactly_quick_old_is_not_yet_silent() -> None:
    sample = Sample(10.0, 2, [10.5, 10.75])  # binary fractions: no rounding at the edge
    sample.settle(11.0, 0.25)
    assert sample.silent == [10.5]  # 0.5 old; 10.75 is exactly 0.25 old


def test_settle_tells_apart_grants_made_at_the_same_instant() -> None:
    twice = Sample(SINCE, 4, [10.01, 10.01, 10.02])
    twice.answered(10.01, True)  # one of the two grants at 10.01 answered
    twice.settle(11.0, 0.01)
    assert twice.silent == [10.01, 10.02]


def test_the_sample_s_own_rate_is_capped_at_bursty_times_the_gate_s() -> None:
    instant = Sample(SINCE, 4, [SINCE + 0.01] * 4, 100.0)
    for _ in range(4):
        instant.answered(SINCE + 0.01, False)
    assert instant.accepted_rate() == pytest.approx(150.0)  # 4 in 10 ms, capped at 1.5x
    none_after = Sample(SINCE, 4, [SINCE], 100.0)  # granted with the 429, not after it
    assert none_after.accepted_rate() == 0.0


def _recent(oks: list[float], throttled: list[float]) -> Recent:
    """Answers of the last second: accepted ones taking ``oks``, 429s taking ``throttled``."""
    recent = Recent(1.0)
    answers = [(OK, took) for took in oks] + [(THROTTLED, took) for took in throttled]
    for n, (kind, took) in enumerate(answers):  # all within the last 0.9 s
        at = 5.0 + n * 0.9 / len(answers)
        recent.add(at, kind, at - took)
    return recent


def test_an_answer_is_late_after_thrice_what_nine_accepted_in_ten_took() -> None:
    recent = _recent([0.05] * 9 + [0.2], [0.001] * 30)  # 429s come back at once
    assert straggling(recent, 1.0) == pytest.approx(3 * 0.2)  # not 3 x 1 ms
    assert straggling(_recent([0.05] * 19 + [0.1], []), 1.0) == pytest.approx(0.15)  # 9 in 10
    assert straggling(_recent([0.5] * 10, []), 1.0) == 1.0  # at most the patience
    assert straggling(_recent([], [0.001] * 10), 0.7) == 0.7  # none accepted yet


def _whole(pattern: str, rate: float = 3000.0) -> Sample:
    sample = _sample(pattern, step=0.002, rate=rate)
    assert sample.whole
    return sample


def test_a_steady_sample_is_the_measure_not_the_last_second() -> None:
    steady = _whole("T.T.T.T.T.T.T.T.")  # 16 granted in 35 ms, half accepted: 229/s
    swollen = _recent([0.01] * 480, [])  # a 1 s burst: 480 accepted in the last second
    assert accepted_rate(steady, swollen, 300.0, 600.0) == pytest.approx(16 / 0.035 / 2)


def test_a_spent_window_is_measured_by_the_last_second_up_to_a_rise() -> None:
    spent = _whole("TTTTTTTTTTTTTTTT")  # nothing accepted after the 429
    recent = _recent([0.01] * 300, [])
    assert accepted_rate(spent, recent, None, 3000.0) == pytest.approx(300.0)
    # with a limit known, the last second is trusted up to 1.05x it or 0.9x the rate
    assert accepted_rate(spent, _recent([0.01] * 500, []), 300.0, 400.0) == pytest.approx(360)
    assert accepted_rate(spent, _recent([0.01] * 500, []), 400.0, 300.0) == pytest.approx(420)
    assert accepted_rate(spent, recent, 300.0, 400.0) == pytest.approx(300.0)


def test_a_window_that_opened_again_takes_the_larger_of_sample_and_last_second() -> None:
    reopened = _whole("TTTTTTTT........")  # not steady: 229/s in the sample
    own = 16 / 0.035 / 2
    assert accepted_rate(reopened, _recent([0.01] * 290, []), 300.0, 500.0) == pytest.approx(290)
    assert accepted_rate(reopened, _recent([0.01] * 100, []), 300.0, 500.0) == pytest.approx(own)
    # the first cut, no limit known: the sample's own rate, the last second only if nothing
    assert accepted_rate(reopened, _recent([0.01] * 290, []), None, 500.0) == pytest.approx(own)
    early = _sample("TTTTTTTT", step=0.002)  # 8 of 16 granted: not whole
    assert not early.whole
    assert accepted_rate(early, _recent([0.01] * 290, []), None, 500.0) == pytest.approx(290)


def test_a_steady_sample_is_the_measure_however_slow() -> None:
    """Sixteen grants over nine seconds, half accepted: under one a second, and still what
    the server accepts (a bucket refilling slowly), not the last second's count."""
    slow = _sample("T.T.T.T.T.T.T.T.", step=0.6)
    assert slow.whole and slow.steady()
    assert accepted_rate(slow, _recent([0.01] * 290, []), 300.0, 500.0) == pytest.approx(
        16 / (REORDER + 15 * 0.6) / 2
    )
