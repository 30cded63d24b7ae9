"""Reaching Redis: the URL, its password, the key names, and a lifeline through outages.

``redis://`` and ``rediss://`` (TLS, certificates verified) are accepted. The password comes
from ``DEVIN_TERMINATE_REDIS_PASSWORD`` or a file (``--redis-password-file``), or from the URL
itself; it never appears in any output (`mask_url`). redis-py is imported lazily, so that the
package works without the ``redis`` extra until ``--redis`` is used.

A Redis that goes away is a dependency failure, not a session failure: every call goes through
`Lifeline.call`, which retries connection errors and timeouts with backoff, and once Redis has
stayed away past the deadline sets ``lost`` (the command then exits 3, see `RedisUnavailable`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog

from worker._names import PASSWORD_ENV
from worker.errors import ConfigError, WorkerError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("worker.fleet")

T = TypeVar("T")


class RedisUnavailable(WorkerError):
    """Redis stayed unreachable past the deadline; nothing unrecorded was acknowledged."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key of one queue: the stream, its settled-id and sending hashes, its results."""

    stream: str

    @property
    def settled(self) -> str:
        return f"{self.stream}:settled"

    @property
    def sending(self) -> str:
        return f"{self.stream}:sending"

    @property
    def results(self) -> str:
        return f"{self.stream}:results"


def limiter_key(org_id: str, base_url: str) -> str:
    """One shared limiter per org id and API base URL."""
    digest = hashlib.sha256(f"{org_id}\n{base_url.rstrip('/')}".encode()).hexdigest()[:16]
    return f"devin-terminate:limit:{digest}"


def mask_url(url: str) -> str:
    """The URL as it may be printed: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(
            f"--redis {mask_url(url)!r} is not a Redis URL; use redis://HOST:6379/0, "
            "or rediss://HOST:6380/0 for TLS"
        )


def read_password(
    password_file: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The Redis password: the file when named, else the environment, else none."""
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(
                f"cannot read the Redis password file {password_file}: {exc.strerror}"
            ) from None
    environ = os.environ if environ is None else environ
    return environ.get(PASSWORD_ENV) or None


def open_redis(url: str, *, password: str | None = None, socket_timeout: float = 5.0) -> Redis:
    """A client for ``url``. Few retries inside redis-py: `Lifeline` handles long outages.

    Keep every BLOCK shorter than ``socket_timeout`` (redis-py does not extend the timeout
    for blocking commands).
    """
    check_url(url)
    try:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff
    except ImportError:
        raise ConfigError(
            "--redis needs the redis extra: pip install 'devin-terminate[redis]'"
        ) from None
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": min(socket_timeout, 5.0),
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        "health_check_interval": 15,
        "decode_responses": True,
    }
    if password is not None:
        options["password"] = password
    from worker.output.logs import REDACTOR

    REDACTOR.add(password)
    REDACTOR.add(urlsplit(url).password)
    return Redis.from_url(url, **options)


def _transient() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


class Lifeline:
    """Retries Redis calls through an outage; past ``deadline`` seconds of it, gives up.

    The outage clock is shared by every caller: any success resets it. ``lost`` is set when
    the deadline passes, and every pending and later call raises `RedisUnavailable`.
    """

    def __init__(self, url: str, deadline: float, *, clock: Callable[[], float] = time.monotonic):
        self.url = mask_url(url)
        self.deadline = deadline
        self.lost = asyncio.Event()
        self._clock = clock
        self._down_since: float | None = None
        self.recoveries = 0  # outages survived: a reader re-reads its pending entries after one
        self.errors = 0  # calls that failed on a connection error or timeout (then retried)
        self._on_nogroup: list[Callable[[], Awaitable[object]]] = []

    def on_nogroup(self, repair: Callable[[], Awaitable[object]]) -> None:
        """``repair`` runs when Redis answers NOGROUP (it restarted without its data)."""
        self._on_nogroup.append(repair)

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        from redis.exceptions import ResponseError

        delay = 0.05
        while True:
            if self.lost.is_set():
                raise self.error()
            try:
                result = await fn()
            except _transient() as exc:
                self._failed(what, exc, delay)
            except ResponseError as exc:
                if not str(exc).startswith("NOGROUP") or not self._on_nogroup:
                    raise
                log.warning("redis.group_missing", during=what, hint="recreating the group")
                for repair in self._on_nogroup:
                    await repair()
                continue
            else:
                if self._down_since is not None:
                    self._down_since = None
                    self.recoveries += 1
                    log.info("redis.back", during=what, redis=self.url)
                return result
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _failed(self, what: str, exc: BaseException, delay: float) -> None:
        self.errors += 1
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        down = now - self._down_since
        if down >= self.deadline:
            self.lost.set()
            raise self.error() from None
        log.warning(
            "redis.retry",
            during=what,
            redis=self.url,
            error=f"{type(exc).__name__}: {exc}",
            down_s=round(down, 1),
            delay_s=round(delay, 2),
        )

    def error(self) -> RedisUnavailable:
        return RedisUnavailable(
            f"Redis at {self.url} stayed unreachable for more than {self.deadline:g} s; "
            "stopped. Entries not yet recorded stay pending and will be delivered again. "
            "Check the server, then start the worker again."
        )
