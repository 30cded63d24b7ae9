"""Rate changes told to a person: a line per significant change, never one per step."""

from __future__ import annotations

from typing import Any

from worker.output.rates import RateNotes


class _Lines:
    def __init__(self) -> None:
        self.info: list[tuple[str, dict[str, Any]]] = []
        self.debug = 0


class _Logger:
    def __init__(self, lines: _Lines) -> None:
        self._lines = lines

    def info(self, event: str, **kw: Any) -> None:
        self._lines.info.append((event, kw))

    def debug(self, event: str, **kw: Any) -> None:
        self._lines.debug += 1


def test_a_cut_then_a_climb_of_many_steps_is_two_lines() -> None:
    now = [0.0]
    lines = _Lines()
    notes = RateNotes(100.0, clock=lambda: now[0], logger=_Logger(lines))
    notes.changed(100.0, 50.0, "throttled")
    rate = 50.0
    while rate < 100.0:  # a climb in 1% steps, a quarter second apart
        now[0] += 0.25
        new = min(100.0, rate * 1.01 + 0.1)
        notes.changed(rate, new, "recovering")
        rate = new
    assert lines.debug > 50  # every step is there at debug
    assert [event for event, _ in lines.info] == ["rate.lowered", "rate.restored"]
    assert lines.info[0][1]["to"] == 50.0 and lines.info[0][1]["was"] == 100.0


def test_repeated_small_cuts_are_one_line_until_the_rate_halves_again() -> None:
    now = [0.0]
    lines = _Lines()
    notes = RateNotes(400.0, clock=lambda: now[0], logger=_Logger(lines))
    rate = 400.0
    for _ in range(40):  # a cut every second, 5% each
        now[0] += 1.0
        notes.changed(rate, rate * 0.95, "throttled")
        rate *= 0.95
    told = [kw["to"] for event, kw in lines.info if event == "rate.lowered"]
    assert 1 <= len(told) <= 4, told  # 400 -> ~320, then only when halved again
    assert notes.lowest is not None and notes.lowest < 60


def test_no_ceiling_no_lines() -> None:
    lines = _Lines()
    notes = RateNotes(None, logger=_Logger(lines))
    notes.changed(10.0, 5.0, "throttled")
    assert lines.info == []
