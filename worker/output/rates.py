"""Rate changes told to a person: a line when the rate is cut or back at the ceiling, never
one per step of the controller.

The adaptive gate moves the granted rate in small steps (a cut on a throttle, then a climb
every quarter second). Every step stays available at debug level (``rate.changed``, which
the benchmarks plot); at info a run says ``rate.lowered`` when a throttle cut the rate a
significant share below what was last said (at most once per ``quiet_s`` seconds unless
the rate fell by half again), and ``rate.restored`` when it is back at the ceiling after a
cut that was told.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("worker.rates")

_SIGNIFICANT = 0.8  # a cut to under 80% of the rate last told is worth a line
_STEEP = 0.5  # a cut to under half of it is told at once, however recent the last line


class RateNotes:
    """Decides which rate changes deserve a line; ``changed`` is the gate's listener."""

    def __init__(
        self,
        ceiling: float | None,
        *,
        quiet_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        logger: Any = None,
    ) -> None:
        self._ceiling = ceiling or None
        self._told = self._ceiling  # the rate the last line named
        self._quiet_s = quiet_s
        self._clock = clock
        self._last_line = float("-inf")
        self._throttles = 0  # cuts since the last line
        self._lowest: float | None = None
        self._log = logger if logger is not None else log.bind()

    @property
    def lowest(self) -> float | None:
        """The lowest rate granted in the run, when it was ever cut."""
        return self._lowest

    def changed(self, old: float, new: float, reason: str) -> None:
        self._log.debug("rate.changed", old=round(old, 2), new=round(new, 2), reason=reason)
        if self._told is None:
            return
        if new < old:
            self._throttles += 1
            self._lowest = new if self._lowest is None else min(self._lowest, new)
            self._maybe_lowered(new)
        elif self._ceiling is not None and new >= self._ceiling and self._told < self._ceiling:
            self._restored(new)

    def _maybe_lowered(self, new: float) -> None:
        assert self._told is not None
        quiet = self._clock() - self._last_line < self._quiet_s
        if new >= _SIGNIFICANT * self._told or (quiet and new >= _STEEP * self._told):
            return
        self._log.info(
            "rate.lowered",
            to=round(new, 1),
            was=round(self._told, 1),
            throttles=self._throttles,
            hint="the API answered 429; the rate climbs back while it accepts",
        )
        self._said(new)

    def _restored(self, new: float) -> None:
        # only ever after a told cut, which the quiet period already spaces out
        self._log.info("rate.restored", to=round(new, 1), throttles=self._throttles)
        self._said(new)

    def _said(self, rate: float) -> None:
        self._told = rate
        self._last_line = self._clock()
        self._throttles = 0
