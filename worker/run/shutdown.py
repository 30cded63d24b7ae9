"""Two-phase shutdown: the first SIGINT/SIGTERM/SIGHUP stops intake (``stop``) and lets the
requests in flight finish within ``drain_timeout``; the deadline or a second signal cancels
the main task, which then leaves its TaskGroup with every session recorded. While nothing
can have been sent yet (``immediate``: the identity check), a signal cancels at once.
SIGHUP (the terminal or the ssh session closed) drains like SIGTERM, and exits 129."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

import structlog

log = structlog.get_logger("worker.run.shutdown")

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class Shutdown:
    def __init__(self, drain_timeout: float, stop: Callable[[str], None], *, handle: bool) -> None:
        self._drain = drain_timeout
        self._stop = stop
        self._handle = handle
        self.signal: signal.Signals | None = None
        self._main: asyncio.Task[object] | None = None
        self._cancel_handle: asyncio.TimerHandle | None = None
        self.immediate = False  # nothing sent yet: a signal need not wait for a drain

    @property
    def exit_code(self) -> int | None:
        return None if self.signal is None else SIGNAL_EXIT[self.signal]

    def install(self) -> None:
        """Watch the signals (when asked to) on behalf of the current task."""
        self._main = asyncio.current_task()
        if self._handle:
            loop = asyncio.get_running_loop()
            for sig in SIGNAL_EXIT:
                loop.add_signal_handler(sig, self._on_signal, sig)

    def remove(self) -> None:
        if self._handle:
            loop = asyncio.get_running_loop()
            for sig in SIGNAL_EXIT:
                loop.remove_signal_handler(sig)

    def absorb(self) -> bool:
        """In an ``except CancelledError``: True when the cancellation was ours (undone)."""
        if self.signal is None or self._main is None:
            return False
        self._main.uncancel()
        return True

    def done(self) -> None:
        if self._cancel_handle is not None:
            self._cancel_handle.cancel()

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.signal is not None:  # second signal: stop draining now
            log.warning("run.drain_aborted", signal=sig.name)
            self._cancel_now()
            return
        self.signal = sig
        log.warning(
            "run.interrupted",
            signal=sig.name,
            drain_timeout_s=self._drain,
            hint="waiting for requests in flight; send the signal again to stop at once",
        )
        self._stop(f"interrupted by {sig.name}")
        if self.immediate:
            self._cancel_now()
            return
        loop = asyncio.get_running_loop()
        self._cancel_handle = loop.call_later(self._drain, self._cancel_now)

    def _cancel_now(self) -> None:
        if self._main is not None and not self._main.done():
            self._main.cancel()
