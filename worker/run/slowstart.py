"""The start of a run, until a limit is found: requests unanswered at most (a window).

Before the first answers come back, a gate at ``--rate`` sends rate × answer time requests
blind: at ten times a server's limit and 50 ms answers, 150 requests, 120 of them 429s,
before the first 429 can say anything. And a client at thousands of requests a second
reads its own answers late (its loop is busy sending): against a fixed window spent at
once, 170 429s went out before the first was read. So a run starts as TCP does: at most
``INITIAL`` requests unanswered at once, and each accepted answer that came back while the
window was full widens it by one (twice as many each round trip while it holds the rate
back). A window that is not full does not grow, so when answers stop coming (a window
spent, a stalled loop) no more than it are out. While a 429 is being measured it does not
grow; once the rate has been cut to what the server accepts, the window is dropped.

Only grants count that were made in the last ``EXPIRE_S`` seconds: a request that hangs,
or one whose answer is never reported, does not hold the window shut. A grant that lapsed
so while the window was full (its lapse let a waiting request go) still widens it when
its answer comes back accepted: with answers in 2 s every grant lapses, and without this
the window grew by one a round trip (a run at ``--rate 40`` took 12 s to reach it); it
doubles each round trip instead. Answers faster than ``EXPIRE_S`` are judged as before.
"""

from __future__ import annotations

import contextlib
from collections import deque

INITIAL = 16  # requests unanswered at most before any answer
EXPIRE_S = 1.0  # a grant unanswered for this long no longer counts
LAPSED_S = 60.0  # an answer to a lapsed grant later than this widens nothing
GROWTH = 1.0  # added per accepted answer to a full window: twice as many each round trip


class SlowStart:
    """The window: ``room(now)`` before a grant, ``granted`` and ``answered`` after."""

    __slots__ = ("_lapsed", "_out", "window")

    def __init__(self, window: float = INITIAL) -> None:
        self.window = float(window)
        self._out: deque[float] = deque()  # grant times not answered yet, in order
        self._lapsed: deque[float] = deque()  # expired from a full window, not answered yet

    def granted(self, at: float) -> None:
        self._out.append(at)

    def answered(self, sent: float, accepted: bool, *, grow: bool) -> None:
        """An answer to the grant made at ``sent``; an accepted one widens a full window
        (unless not ``grow``: a 429 is being measured)."""
        full = len(self._out) >= self.window
        try:
            self._out.remove(sent)
        except ValueError:  # expired, or granted before the window was
            with contextlib.suppress(ValueError):
                self._lapsed.remove(sent)
                full = True
        if accepted and grow and full:
            self.window += GROWTH

    def room(self, now: float) -> bool:
        """Whether one more request may go now."""
        out, lapsed = self._out, self._lapsed
        while lapsed and lapsed[0] < now - LAPSED_S:
            lapsed.popleft()
        while out and out[0] < now - EXPIRE_S:
            if len(out) >= self.window:
                lapsed.append(out[0])
            out.popleft()
        return len(out) < self.window
