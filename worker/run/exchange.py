"""How every request of a session is sent: its turn at the rate gate (bounded by the
session's deadline and the run's halt), then retried under the ``RetryPolicy``; and what
each answer tells the run (`Exchange.heard`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from worker.devin.answer import Answer
from worker.outcomes import Tally
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy, Tries
from worker.run.slots import Slots

if TYPE_CHECKING:
    from worker.devin.client import DevinClient
    from worker.run.authority import Authority

Heard = Callable[[Answer], None]


class Shared(Protocol):
    """What the attempts of every session of a run share (`worker.run.terminate.Terminator`):
    what an `Exchange` needs, the client, and what the run knows of the token."""

    client: DevinClient
    gate: RateGate
    archive: bool
    policy: RetryPolicy
    halt: Halt
    tally: Tally
    before_send: Callable[[str], None] | None
    slots: Slots | None
    authority: Authority


def _unexplained(answer: Answer) -> str | None:
    return None


@dataclass(slots=True)
class Exchange:
    """The gate, the policy, the halt and the request count, shared by a run's sessions."""

    gate: RateGate
    policy: RetryPolicy
    halt: Halt
    tally: Tally
    # the run's requests in flight (--concurrency); None: the caller does not bound them
    slots: Slots | None = None
    # when the gate let this session's latest attempt go: its answer is reported with it
    sent: float = 0.0

    async def turn(self, tries: Tries) -> str | None:
        """Wait for the rate gate; None when the attempt may go, else why it may not.
        (`ask` takes the gate's answer at once, when there is no limit, without this wait.)"""
        if await self.halt.race(self._acquire(), tries.remaining()):
            return None
        if self.halt:
            return f"not sent: {self.halt.reason}"
        timeout = self.policy.session_timeout
        return f"session_timeout ({timeout:g} s) passed waiting for the rate gate"

    async def _acquire(self) -> None:
        self.sent = await self.gate.acquire()

    async def pause(self, wait: float) -> str | None:
        """Wait before a retry; None when done, else why the retry is not sent (a halt).

        ``--concurrency`` bounds requests in flight, so a session waiting out a backoff or a
        ``Retry-After`` gives its slot to the next session and takes one back before its
        retry: a few slow retries do not starve the run. (Cancelled while taking it back,
        at shutdown, the session's own release leaves one slot too many: intake is over.)
        """
        self.tally.retries += 1
        slots = self.slots if wait > 0 else None
        if slots is not None:
            slots.release()
        try:
            done = await self.halt.race(self.policy.sleep(wait))
        finally:
            if slots is not None:
                await slots.acquire()
        return None if done else f"not sent: {self.halt.reason}"

    def heard(self, answer: Answer) -> None:
        """What an answer means for the whole run: the rate gate learns of it, and endless
        throttling (the policy's breaker) halts the run."""
        self._report(answer)
        reason = self.policy.throttle.observe(answer.status, answer.retry_after)
        if reason is not None:
            self.halt(reason, fatal=True)

    def _report(self, answer: Answer) -> None:
        """Tell the rate gate what this answer means for the rate of the whole run.

        A 429 is the rate-limit signal. A 5xx that says when to come back is a per-request
        signal: this session's backoff already waits ``Retry-After``; the gate only acts
        when such answers are a real share of recent traffic. Anything else, timeouts and
        dropped connections included, counts as accepted: the server took the request
        (and a token of its rate limit) even though no answer came back.
        """
        status, retry_after, sent = answer.status, answer.retry_after, self.sent
        if status == 429:
            self.gate.throttled(retry_after, sent)
        elif status is not None and status >= 500 and retry_after is not None:
            self.gate.overloaded(retry_after, sent)
        else:
            self.gate.accepted(sent)

    async def ask(
        self,
        tries: Tries,
        send: Callable[[], Awaitable[Answer]],
        settled: Callable[[Answer], bool | Awaitable[bool]],
        explain: Callable[[Answer], str | None] = _unexplained,
        *,
        heard: Heard | None = None,
        retrying: Callable[[Answer, float], None] | None = None,
    ) -> tuple[Answer | None, str | None]:
        """The attempt loop of every request: send until ``settled`` accepts an answer, or
        the policy or a halt stops. Returns (the last answer, None), or (the last answer,
        why it stopped; ``tries.gave_up`` says so when the policy did).

        Each attempt takes its turn at the rate gate, is counted, and its answer is told to
        the slots (how long it took) and to ``heard`` (default `heard`: the rate gate and
        the throttle breaker) before ``settled`` (which may be a coroutine) decides on it;
        waits go through the policy's clock. ``explain`` says what is wrong with an answer
        whose own text would not; ``retrying`` hears each retry scheduled."""
        answer: Answer | None = None
        gate, slots, halt = self.gate, self.slots, self.halt
        while True:
            # no limit: no wait to race against a halt (two tasks and a coroutine saved)
            if halt.reason is None and (now := gate.at_once()) is not None:
                self.sent = now
            elif (stop := await self.turn(tries)) is not None:
                break
            tries.attempts += 1
            self.tally.requests += 1
            if slots is None:
                answer = await send()
            else:  # the slots know the attempt is out until it ends, answered or not
                sent = self.sent
                slots.sending(sent)
                try:
                    answer = await send()
                finally:
                    slots.answered(sent)  # on the gate's clock (`Pipeline`)
            (heard or self.heard)(answer)
            done = settled(answer)
            if done if isinstance(done, bool) else await done:
                return answer, None
            wait = tries.next_wait(answer, explain(answer))
            if isinstance(wait, str):
                tries.gave_up = True
                return answer, wait
            if retrying is not None:
                retrying(answer, wait)
            if (stop := await self.pause(wait)) is not None:
                break
        return answer, stop
