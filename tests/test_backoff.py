"""Backoff, Retry-After parsing and the retry budget: pure functions, no clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.devin.retry_after import parse_retry_after
from worker.run.backoff import Backoff, RetryBudget

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


# Full jitter and Retry-After waits: tests/test_retry.py checks their distributions.


def test_zero_base_waits_zero() -> None:
    backoff = Backoff(base=0.0, retry_after_max=0.0)
    assert backoff.delay(5) == 0.0 and backoff.delay(1, retry_after=30.0) == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("0.5", 0.5),
        ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),  # IMF-fixdate
        ("Saturday, 28-Nov-26 12:01:00 GMT", 60.0),  # RFC 850
        ("Sat Nov 28 12:00:10 2026", 10.0),  # asctime: naive, taken as UTC
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),  # in the past: no wait
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_budget_drains_only_while_retries_fail() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5, timeout_cost=10)
    assert budget.take() and budget.take(timeout=True)
    assert budget.available == 5
    assert not budget.take(timeout=True)  # not enough for a timeout retry
    budget.refund(retried=True, timeout=True)  # that retried session succeeded
    assert budget.available == 15
    budget.refund()
    assert budget.available == 16
    budget.available = 10
    budget.refund(retried=True)  # a retried session gives back what a retry cost
    assert budget.available == 15
    budget.refund(retried=True, timeout=True)
    assert budget.available == 20  # not 25: never above capacity
    budget.available = 0
    budget.refund(timeout=True)  # not retried: 1, whatever the last failure was
    assert budget.available == 1
    for _ in range(10):
        budget.refund(retried=True)
    assert budget.available == 20  # never above capacity


def test_a_short_retry_after_is_waited_as_it_is() -> None:
    assert Backoff(base=0.0).delay(2, retry_after=0.5) == 0.5
    assert RetryBudget(capacity=7, available=0).available == 0  # an empty budget stays empty
