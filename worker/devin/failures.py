"""What a request that got no usable HTTP answer failed of: aiohttp's exceptions (and a
timeout) mapped to an `Answer`'s failure, in one line that never carries request headers.
"""

from __future__ import annotations

import aiohttp

from worker.devin.answer import Answer
from worker.devin.network import proxy_failure

__all__ = ["failed"]


def failed(exc: aiohttp.ClientError | TimeoutError, proxy: str | None, mutating: bool) -> Answer:
    """The answer of a request that failed in transport; ``maybe_sent`` when a ``mutating``
    one may have reached the server."""
    if isinstance(
        exc,
        aiohttp.ClientProxyConnectionError
        | aiohttp.ClientHttpProxyError
        | aiohttp.ClientConnectorCertificateError,
    ):
        return Answer(None, failure=_unsent(exc, proxy), maybe_sent=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Answer(None, failure=f"cannot connect: {_safe(exc)}")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Answer(None, failure="connect timeout")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return Answer(None, failure=f"connection lost: {_safe(exc)}", maybe_sent=mutating)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return Answer(None, failure=f"broken answer: {_safe(exc)}", maybe_sent=mutating)
    if isinstance(exc, TimeoutError):
        return Answer(None, failure="timeout", maybe_sent=mutating)
    return Answer(None, failure=f"{type(exc).__name__}: {_safe(exc)}", maybe_sent=mutating)


def _unsent(exc: aiohttp.ClientError, proxy: str | None) -> str:
    """The failure of a request that cannot have left: no tunnel, or an untrusted API."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not trusted: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return proxy_failure(proxy, exc.status, _safe(Exception(exc.message)))
    return proxy_failure(proxy, None, _safe(exc))


def _safe(exc: BaseException) -> str:
    """A one-line text of an aiohttp error; never its repr, which may carry request headers."""
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
