"""The run's stop flag: set once, with a reason, by whatever must stop the run (a refused
token, sustained throttling, the failure breaker, a signal); every wait of a session ends
as soon as it is set."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field


@dataclass(slots=True)
class Halt:
    """Set once when the run must stop sending: the reason, and whether it is fatal (exit 3;
    an auth failure is fatal). Waits of the sessions end as soon as it is set."""

    reason: str | None = None
    auth: bool = False
    listener: Callable[[], None] | None = None
    fatal: bool = False
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, reason: str, *, auth: bool = False, fatal: bool = False) -> None:
        if self.reason is None:
            self.reason, self.auth, self.fatal = reason, auth, fatal or auth
            self._event.set()
            if self.listener is not None:
                self.listener()

    def __bool__(self) -> bool:
        return self.reason is not None

    async def race(self, awaitable: Awaitable[None], timeout: float | None = None) -> bool:
        """Await ``awaitable`` unless the run halts or ``timeout`` passes first; True when
        it completed and the run goes on."""
        if self:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never started: no "never awaited" warning
            return False
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait((task, stop), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            return False
        task.result()  # what it raised is raised here, never lost
        return not self
