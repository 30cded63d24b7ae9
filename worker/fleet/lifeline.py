"""A lifeline through Redis outages, and what a Redis error means for a worker.

A Redis that goes away is a dependency failure, not a session failure: every call goes through
`Lifeline.call`, which retries connection errors and timeouts with backoff, and once Redis has
stayed away past the deadline sets ``lost`` (the command then exits 3, see `RedisUnavailable`).
Every call has that deadline too, so a Redis that accepts and never answers (frozen, or behind
a proxy that hangs) is an outage like any other. A refused password or permission is not an
outage: `RedisRefused` (exit 2) at once. A queue whose stream, group or marker is gone (a
Redis restarted without its data) is `QueueLost` (exit 3): nothing is acted on any more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import structlog

from worker.errors import WorkerError
from worker.fleet.connect import mask_url, open_redis, read_password, socket_timeout_for

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("worker.fleet")

T = TypeVar("T")


class RedisUnavailable(WorkerError):
    """Redis stayed unreachable past the deadline; nothing unrecorded was acknowledged."""

    exit_code = 3


class RedisRefused(WorkerError, exit_code=2):
    """Redis refused the password, the user or a command (ACL): configuration, not outage."""


class QueueLost(WorkerError, exit_code=3):
    """The queue's stream, group or marker is gone: Redis lost its data, or was emptied."""


def connect(url: str, password_file: str | None, deadline: float) -> tuple[Redis, Lifeline]:
    """A client and its lifeline, with every timeout derived from ``deadline``."""
    redis = open_redis(
        url, password=read_password(password_file), socket_timeout=socket_timeout_for(deadline)
    )
    return redis, Lifeline(url, deadline)


def _transient() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)  # OSError: asyncio's TimeoutError too


def _refused() -> tuple[type[BaseException], ...]:
    from redis.exceptions import (
        AuthenticationError,
        AuthenticationWrongNumberOfArgsError,
        AuthorizationError,
        NoPermissionError,
    )

    return (
        AuthenticationError,
        AuthorizationError,
        NoPermissionError,
        AuthenticationWrongNumberOfArgsError,
    )


class Lifeline:
    """Retries Redis calls through an outage; past ``deadline`` seconds of it, gives up.

    The outage clock is shared by every caller: any success resets it, and an outage starts
    when the first call that failed was sent, so a call that hangs counts from its start.
    No call waits longer than what is left of the deadline. ``lost`` is set when the deadline
    passes, and every pending and later call raises `RedisUnavailable`; a refused password
    raises `RedisRefused` and a lost queue `QueueLost` at once, without retrying.
    """

    def __init__(self, url: str, deadline: float, *, clock: Callable[[], float] = time.monotonic):
        self.url = mask_url(url)
        self.deadline = deadline
        self.lost = asyncio.Event()
        self.fatal: WorkerError | None = None  # the error that stopped every caller
        self.round_trips = 0  # calls sent (a pipeline is one), for the README's cost figures
        self._clock = clock
        self._down_since: float | None = None
        self.recoveries = 0  # outages survived: a reader re-reads its pending entries after one
        self.errors = 0  # calls that failed on a connection error or timeout (then retried)

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        delay = 0.05
        while True:
            if self.lost.is_set():
                raise self.error()
            started = self._clock()
            try:
                self.round_trips += 1
                async with asyncio.timeout(self._time_left(started)):
                    result = await fn()
            except _transient() as exc:
                if isinstance(exc, _refused()):
                    raise self._stop(self._refused(exc)) from None
                self._failed(what, exc, delay, started)
            except Exception as exc:
                raise self._classify(exc) from None
            else:
                if self._down_since is not None:
                    self._down_since = None
                    self.recoveries += 1
                    log.info("redis.back", during=what, redis=self.url)
                return result
            await asyncio.sleep(min(delay, self._time_left(self._clock())))
            delay = min(delay * 2, 2.0)

    def _time_left(self, now: float) -> float:
        since = now if self._down_since is None else self._down_since
        return max(0.05, self.deadline - (now - since))

    def _classify(self, exc: Exception) -> Exception:
        """What a Redis error that no retry mends means for the worker."""
        from redis.exceptions import ResponseError

        text = str(exc)
        if isinstance(exc, _refused()):
            return self._stop(self._refused(exc))
        if isinstance(exc, ResponseError) and text.startswith(("NOGROUP", "LOSTQUEUE")):
            return self._stop(
                QueueLost(
                    f"the queue at {self.url} was lost ({_oneline(text)}): Redis restarted "
                    "without its data, or the keys were deleted. Ids not yet settled are in no "
                    "queue now. Enqueue the original input again (ids the result logs show "
                    "terminated answer 404 and are reported already_terminated), or only the "
                    "ids the logs do not settle: `devin-terminate report W*.jsonl --outcome "
                    "failed,cancelled --format ids | devin-terminate enqueue -` when the logs "
                    "hold every id. Turn on persistence (appendonly yes) on the Redis server."
                )
            )
        return exc

    def _refused(self, exc: BaseException) -> RedisRefused:
        return RedisRefused(
            f"Redis at {self.url} refused authentication or permission ({_oneline(str(exc))}): "
            "check the password (DEVIN_TERMINATE_REDIS_PASSWORD or --redis-password-file), the "
            "user in the URL, and its ACL (streams, hashes, EVALSHA, SCRIPT LOAD)"
        )

    def _stop(self, error: WorkerError) -> WorkerError:
        if self.fatal is None:
            self.fatal = error
        self.lost.set()
        return error

    def _failed(self, what: str, exc: BaseException, delay: float, started: float) -> None:
        self.errors += 1
        now = self._clock()
        if self._down_since is None:
            self._down_since = started
        down = now - self._down_since
        if down >= self.deadline - 0.01:
            self._stop(self._unavailable())
            raise self.error() from None
        log.warning(
            "redis.retry",
            during=what,
            redis=self.url,
            error=f"{type(exc).__name__}: {_oneline(str(exc))}" if str(exc) else type(exc).__name__,
            down_s=round(down, 1),
            delay_s=round(delay, 2),
        )

    def error(self) -> WorkerError:
        """The error every caller raises once the lifeline is lost."""
        return self.fatal or self._unavailable()

    def _unavailable(self) -> RedisUnavailable:
        return RedisUnavailable(
            f"Redis at {self.url} stayed unreachable for more than {self.deadline:g} s; "
            "stopped. Entries not yet recorded stay pending and will be delivered again. "
            "Check the server, then start the worker again."
        )


def _oneline(text: str) -> str:
    return " ".join(text.split())[:200]
