"""An event loop on a virtual clock: whenever it would wait, its time jumps to the next timer.

``run_virtual(main)`` runs the coroutine function ``main`` on a fresh such loop (``@virtual``
makes a coroutine test function run that way), so a test
of the rate gate that spans many seconds of loop time takes milliseconds, and is exactly
repeatable. Real I/O still works (it is polled, never waited for), but nothing here needs it.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """``loop.time()`` starts at 0 and moves only by the waits the loop asks for."""

    def __init__(self) -> None:
        super().__init__(selectors.DefaultSelector())
        self._virtual_now = 0.0
        poll = self._selector.select

        def select(timeout: float | None = None) -> list[Any]:
            ready = poll(0)
            if not ready and timeout:
                self._virtual_now += timeout
            elif not ready and timeout is None:
                ready = poll(None)  # nothing scheduled: only I/O can wake the loop
            return ready

        self._selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        return self._virtual_now


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def virtual(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """A coroutine test function run on a fresh virtual-time loop (its parameters, for
    ``pytest.mark.parametrize``, are the coroutine function's)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        run_virtual(lambda: test(*args, **kwargs))

    return run
