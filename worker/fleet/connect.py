"""Reaching Redis: the URL, its password, the key names, and a lifeline through outages.

``redis://`` and ``rediss://`` (TLS, certificates verified) are accepted. The password comes
from ``DEVIN_TERMINATE_REDIS_PASSWORD`` or a file (``--redis-password-file``), or from the URL
itself; it never appears in any output (`mask_url`). redis-py is imported lazily, so that the
package works without the ``redis`` extra until ``--redis`` is used.
``worker.fleet.lifeline.connect`` gives a client and its lifeline, every timeout derived from
``--redis-timeout``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog

from worker._names import PASSWORD_ENV
from worker.errors import ConfigError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("worker.fleet")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key of one queue: the stream, its settled-id and claim hashes, its results, the
    marker of what it was given (``meta``) and the names of its live workers."""

    stream: str

    @property
    def settled(self) -> str:
        return f"{self.stream}:settled"

    @property
    def claims(self) -> str:
        return f"{self.stream}:sending"

    @property
    def meta(self) -> str:
        return f"{self.stream}:meta"

    @property
    def names(self) -> str:
        return f"{self.stream}:consumers"

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
            "--redis needs redis-py beside the command: pipx inject devin-terminate redis "
            "(installed with pipx), uv tool install --with redis ... (uv), or "
            "pip install redis in its virtualenv"
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


def socket_timeout_for(deadline: float) -> float:
    """The socket timeout under a ``--redis-timeout`` of ``deadline``: a third of it, 0.5 to
    5 s, so that a Redis that stops answering is seen well within the deadline."""
    return max(0.5, min(5.0, deadline / 3))
