"""The simulator's rate knobs: faults one kind at a time, a limit on a schedule, per-second
counts. In-process, on loopback, on a fake clock."""

from __future__ import annotations

import argparse
import email.utils

import pytest

from tests.test_simulator import NOW, open_sim
from worker.simulator import SimulatorConfig
from worker.simulator.command import config_from_args, configure_parser
from worker.simulator.ratelimit import ScheduledLimit


@pytest.mark.parametrize(
    ("kind", "status", "retry_after"),
    [
        ("503-retry-after", 503, "3"),
        ("503-retry-date", 503, email.utils.formatdate(NOW + 3, usegmt=True)),
        ("429-no-retry-after", 429, None),
        ("429-retry-date", 429, email.utils.formatdate(NOW + 3, usegmt=True)),
        ("429", 429, "1"),
    ],
)
async def test_each_signal_kind_has_its_own_header(
    kind: str, status: int, retry_after: str | None
) -> None:
    async with open_sim(fault_mix={kind: 1.0}, fault_retry_after=2.5) as sim:
        sid = sim.live_ids()[0]
        got, _, headers = await sim.delete(sid)
        assert got == status and headers.get("Retry-After") == retry_after
        assert sim.run.sessions[sid]["status"] != "exit"
        assert sim.run.stats.faults_injected == {kind: 1}


async def test_a_garbage_body_comes_after_the_work_was_done() -> None:
    async with open_sim(fault_mix={"garbage": 1.0}) as sim:
        sid = sim.live_ids()[0]
        async with sim.http.delete(sim.session_url(sid)) as resp:
            body = await resp.read()
        assert resp.status == 200 and not body.startswith(b"{")
        assert sim.run.sessions[sid]["status"] == "exit"


async def test_each_kind_is_drawn_with_its_own_probability() -> None:
    mix = {"503-retry-after": 0.1, "reset": 0.0, "500": 0.2}
    async with open_sim(sessions=400, fault_mix=mix) as sim:
        for sid in sim.ended_ids()[:50] + sim.live_ids()[:250]:
            await sim.get(sid)
        injected = sim.run.stats.faults_injected
    assert set(injected) == {"503-retry-after", "500"}
    assert 15 <= injected["503-retry-after"] <= 45 and 40 <= injected["500"] <= 80


def test_the_limit_follows_its_schedule() -> None:
    now = [0.0]
    limit = ScheduledLimit(((0.0, 10.0), (1.0, 2.0), (3.0, 10.0)), lambda r: 1, lambda: now[0])
    granted: list[int] = [0, 0, 0, 0]
    for step in range(400):  # 100 requests a second for 4 s
        now[0] = step / 100
        granted[int(now[0])] += limit.take() == 0.0
    assert granted == [pytest.approx(10, abs=1), 2, 2, pytest.approx(10, abs=1)]


@pytest.mark.parametrize("kind", ["window", "sliding"])
def test_a_window_limit_accepts_its_limit_in_a_burst_then_nothing(kind: str) -> None:
    """128 requests a second against a limit of 16 (times in binary fractions, exact): a
    fixed window takes the first 16 of each clock second, a sliding log any 16 in one
    second, and the wait it answers says when the window ends or the oldest leaves."""
    now = [0.25]
    limit = ScheduledLimit(((0.0, 16.0),), lambda r: 1, lambda: now[0], kind)
    taken = []
    for step in range(384):
        now[0] = 0.25 + step / 128
        taken.append(limit.take())
    granted = [i for i, wait in enumerate(taken) if wait == 0.0]
    if kind == "window":  # the clock's seconds start at steps 96, 224 and 352
        assert granted == [*range(16), *range(96, 112), *range(224, 240), *range(352, 368)]
        assert taken[16] == 0.75 - 16 / 128
    else:
        assert granted == [*range(16), *range(128, 144), *range(256, 272)]
        assert taken[16] == 1.0 - 16 / 128


def test_an_unknown_limit_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="limit_kind"):
        SimulatorConfig(rate_limit=10, limit_kind="leaky")


async def test_requests_and_429s_are_counted_per_second() -> None:
    async with open_sim(rate_limit=5, rate_burst=5) as sim:
        sid = sim.live_ids()[0]
        for _ in range(8):
            await sim.get(sid)
        sim.clock.advance(1.0)
        await sim.get(sid)
        stats = sim.run.stats.snapshot()
    assert stats["requests_per_second"] == [8, 1]
    assert stats["throttled_per_second"] == [3]


def test_flags_for_the_mix_and_the_schedule() -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(
        [
            "--fault",
            "503-retry-after=0.05",
            "--fault",
            "timeout=0.01",
            "--fault-retry-after",
            "2",
            "--limit-schedule",
            "0:300,10:150,20:300",
        ]
    )
    config = config_from_args(args)
    assert config.fault_mix == {"503-retry-after": 0.05, "timeout": 0.01}
    assert config.limit_schedule == ((0, 300), (10, 150), (20, 300))
    assert config.fault_retry_after == 2.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--limit-schedule", "0-300"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fault_mix": {"teapot": 0.1}}, "fault_mix"),
        ({"fault_mix": {"500": 0.7, "reset": 0.7}}, "more than 1"),
        ({"limit_schedule": ((5.0, 10.0),)}, "start at 0"),
        ({"limit_schedule": ((0.0, 10.0), (2.0, 0.0))}, "positive"),
    ],
)
def test_bad_knobs_fail_at_start(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorConfig(**settings)  # type: ignore[arg-type]
