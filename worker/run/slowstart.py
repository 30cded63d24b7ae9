"""The start of a run, while nothing is known of the server: requests unanswered at most.

Before the first answers come back, a gate at ``--rate`` sends rate × answer time requests
blind: at ten times a server's limit and 50 ms answers, 150 requests, 120 of them 429s,
before the first 429 can say anything. So a run starts as TCP does: at most ``INITIAL``
requests unanswered at once, one more for each accepted answer (twice as many each round
trip), until the window no longer binds (it holds twice what the rate needs at the answer
times seen) or a 429 has been measured and the rate cut to what the server accepts. While
a 429 is being measured the window does not grow.

Only grants count that were made in the last ``EXPIRE_S`` seconds: a request that hangs,
or one whose answer is never reported, does not hold the window shut.
"""

from __future__ import annotations

import contextlib
from collections import deque

INITIAL = 16  # requests unanswered at most before any answer
EXPIRE_S = 1.0  # a grant unanswered for this long no longer counts
GROWTH = 1.0  # added to the window per accepted answer: twice as many each round trip
CHECK_EVERY = 16  # accepted answers between two looks at whether the window still binds


class SlowStart:
    """The window: ``room(now)`` before a grant, ``granted`` and ``answered`` after."""

    __slots__ = ("_oks", "_out", "window")

    def __init__(self, window: float = INITIAL) -> None:
        self.window = float(window)
        self._out: deque[float] = deque()  # grant times not answered yet, in order
        self._oks = 0

    def granted(self, at: float) -> None:
        self._out.append(at)

    def answered(self, sent: float, accepted: bool, *, grow: bool) -> bool:
        """An answer to the grant made at ``sent``; ``grow``: an accepted one widens the
        window. True every ``CHECK_EVERY`` accepted answers: time to ask ``binds``."""
        with contextlib.suppress(ValueError):  # expired, or granted before the window was
            self._out.remove(sent)
        if not accepted:
            return False
        if grow:
            self.window += GROWTH
        self._oks += 1
        return self._oks % CHECK_EVERY == 0

    def room(self, now: float) -> bool:
        """Whether one more request may go now."""
        out = self._out
        while out and out[0] < now - EXPIRE_S:
            out.popleft()
        return len(out) < self.window

    def binds(self, rate: float, answer_s: float) -> bool:
        """Whether the window still holds back ``rate`` requests/s answered in ``answer_s``
        (with room for twice as many)."""
        return self.window < 2.0 * rate * answer_s
