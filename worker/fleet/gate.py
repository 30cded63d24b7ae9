"""The gate of a fleet worker: the gate of one process under the shared limit, its controller
the fleet's one (``worker.fleet.limiter`` tells how the state is shared).

`FleetController` is the controller of one process (``worker.run.control``) with what a fleet
adds: ``adopt`` what another worker's controller decided, and whether it is measuring a 429.
"""

from __future__ import annotations

import asyncio

import structlog

from worker.fleet.limiter import FleetState, SharedLimiter
from worker.run.control import Change, Clock, RateController
from worker.run.gate import RateGate, RateListener

log = structlog.get_logger("worker.fleet.gate")


class FleetController(RateController):
    @property
    def measuring(self) -> bool:
        """Whether a 429 is being measured (a sample armed, not decided yet)."""
        return self._sample is not None

    def adopt(self, rate: float, limit: float | None, cut_at: float | None) -> None:
        """What another worker's controller decided for the fleet: its rate and the limit
        it found; with its cut (``cut_at``, on this clock), answers to what was granted
        before no longer count here either, as after a cut of this one's own."""
        self.rate = max(self.floor, min(self.ceiling, rate))
        if limit is not None:
            self.limit = limit
        if cut_at is not None and cut_at > self._cut_at:
            self._cut_at = cut_at
            self._sample = None
            self._end_hold()
            self.start = None  # the rate is measured: no window needed


class FleetGate(RateGate):
    """The gate of one process (its controller, pacing and pauses) under the shared limit,
    its controller's state shared (``shared_control``: False when this worker's own
    ``--rate`` is under the fleet's, so its controller stays its own). What the controller
    decides is sent to Redis by one background task, so the reports stay synchronous for
    the terminator; a pause lost to an outage pauses this worker alone."""

    controller = FleetController

    def _ctl(self) -> FleetController | None:
        control = self._control
        return control if isinstance(control, FleetController) else None

    def __init__(
        self,
        shared: SharedLimiter,
        ceiling: float | None,
        *,
        adaptive: bool = True,
        shared_control: bool = True,
        burst: int | None = None,
        max_pause: float = 60.0,
        clock: Clock | None = None,
        on_change: RateListener | None = None,
    ) -> None:
        super().__init__(
            ceiling,
            burst=burst,
            adaptive=adaptive,
            max_pause=max_pause,
            clock=clock,
            on_change=on_change,
        )
        self.shared = shared
        self.generation = 0  # the fleet's cuts this worker's controller knows of
        self.version = 0  # and the fleet controller's writes
        self._deciding = 0  # decisions sent and not answered: the state they change waits
        self._reports: asyncio.Queue[tuple[str, float, float, float]] = asyncio.Queue()
        self._reporter: asyncio.Task[None] | None = None
        # this worker's controller is the fleet's: its decisions go to Redis, and it adopts
        # the others' (else its controller, or its fixed rate, stays its own)
        self._shares = shared_control and adaptive and self._control is not None
        if self._shares:
            assert self._control is not None
            self._control.share = shared.share
            shared.on_state = self._adopt

    def at_once(self) -> float | None:
        return None  # every grant asks the shared limiter, whatever the local rate

    async def acquire(self) -> float:
        """This worker's grant (its pacing, holds and pauses), then the fleet's slot: a
        request is granted when it goes, and the controller is told that time (what it
        measures by), not the time it began to wait for the fleet's slot."""
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(self._report())
        await super().acquire()
        await self.shared.acquire()
        now = self.now()
        if self._control is not None:
            self._control.granted(now)
        return now

    def _granted(self, now: float) -> None:
        pass  # told in acquire, once the fleet's slot has come

    def throttled(self, retry_after: float | None, sent: float) -> None:
        control = self._ctl()
        before, measuring = self.paused_until, control is not None and control.measuring
        super().throttled(retry_after, sent)
        self._share_pause(before)
        if control is not None and control.measuring and not measuring and self._shares:
            self._deciding += 1  # the other workers probe no higher while this one measures
            self._reports.put_nowait(("measure", self.generation, 0.0, 0.0))

    def overloaded(self, retry_after: float | None, sent: float) -> None:
        before = self.paused_until
        super().overloaded(retry_after, sent)
        self._share_pause(before)

    def _apply(self, change: Change | None) -> None:
        super()._apply(change)
        control = self._ctl()
        if change is not None and control is not None and self._shares:  # tell the others
            kind = "probe" if change.reason == "probing" else "cut"
            self._deciding += 1
            self._reports.put_nowait((kind, self.generation, change.new, control.limit or 0.0))

    def _adopt(self, state: FleetState) -> None:
        """Another worker's decision, as Redis holds it (a newer version): a cut (a later
        generation), or a probe, or the mean of the cuts of one wave. Not while this
        worker's own decision is on its way, nor while it measures a wave that another
        worker's cut began: its own measure goes into the mean (``gcra.lua``)."""
        control = self._ctl()
        if control is None or self._deciding or state.rate is None:
            return
        if state.version <= self.version:
            return
        cut = state.generation > self.generation
        if cut and control.measuring:
            return
        self.version, old = state.version, control.rate
        if cut:
            self.generation = state.generation
            self.shared.drop_spare()  # slots reserved at the old rate: not sent
            control.adopt(state.rate, state.limit, self.now() - state.cut_age)
        else:
            control.adopt(state.rate, state.limit, None)
        if self._on_change is not None and control.rate != old:
            self._on_change(old, control.rate, "fleet")

    def _share_pause(self, before: float) -> None:
        """A pause the controller just decided (not a hold, which waits for this worker's
        own answers) goes to every worker."""
        control = self._ctl()
        if control is None or control.holding or control.pause_until <= before:
            return
        if (left := control.pause_until - self.now()) > 0:
            self._reports.put_nowait(("pause", left, 0.0, 0.0))

    async def aclose(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
            await asyncio.gather(self._reporter, return_exceptions=True)
            self._reporter = None
        await self.shared.aclose()
        await super().aclose()

    async def _report(self) -> None:
        """Sends the controller's pauses and decisions to Redis, in order."""
        while True:
            await self._send(*await self._reports.get())

    async def _send(self, kind: str, a: float, b: float, c: float) -> None:
        try:
            if kind == "pause":
                await self.shared.pause(a)
                return
            if not await self.shared.decide(kind, int(a), b, c):
                # refused (a probe while another worker measures, a decision of a generation
                # gone by): what the fleet holds stands, whatever its version; this worker's
                # controller, which already moved, takes it back
                self.version = -1
        except Exception as exc:  # the lifeline gave up: the worker is stopping anyway
            log.warning("fleet.report_lost", what=kind, error=str(exc))
        finally:
            if kind != "pause":
                self._deciding -= 1
        if self.shared.state is not None:  # what the fleet's controller holds now
            self._adopt(self.shared.state)
