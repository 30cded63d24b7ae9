"""What a request that got no usable answer failed of (worker/devin/failures.py): each kind
of aiohttp failure, one line, never more than 200 characters of its text, and whether a
DELETE or an archive call may have reached the server (``maybe_sent``)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from worker.devin.failures import failed

PROXY = "http://user:secret@proxy.example:3128"
# (host, port, is_ssl, ssl, proxy, proxy_auth, proxy_headers_hash[, server_hostname: 3.12+])
KEY = ConnectionKey._make(
    ["api.example", 443, True, True, None, None, None, None][: len(ConnectionKey._fields)]
)
API = URL("https://api.example/v3")
INFO = RequestInfo(API, "DELETE", CIMultiDictProxy(CIMultiDict()), API)


def _proxy_refused(status: int) -> aiohttp.ClientHttpProxyError:
    return aiohttp.ClientHttpProxyError(INFO, (), status=status, message="Forbidden\n  here")


@pytest.mark.parametrize("mutating", [True, False])
@pytest.mark.parametrize(
    ("exc", "begins", "maybe_sent"),
    [
        (
            _proxy_refused(403),
            "proxy http://proxy.example:3128 refused the tunnel: 403 Forbidden here",
            False,
        ),
        (
            aiohttp.ClientProxyConnectionError(KEY, OSError(111, "refused")),
            "proxy http://proxy.example:3128 unreachable: Cannot connect to host",
            False,
        ),
        (
            aiohttp.ClientConnectorCertificateError(KEY, Exception("self-signed")),
            "TLS certificate not trusted: self-signed",
            False,
        ),
        (
            aiohttp.ClientConnectorError(KEY, OSError(111, "refused")),
            "cannot connect: Cannot connect to host api.example:443",
            False,
        ),
        (aiohttp.ConnectionTimeoutError("x"), "connect timeout", False),
        (aiohttp.ServerDisconnectedError(), "connection lost: Server disconnected", None),
        (
            aiohttp.ClientOSError(104, "reset  by\npeer"),
            "connection lost: [Errno 104] reset by peer",
            None,
        ),
        (aiohttp.ClientPayloadError("cut short"), "broken answer: cut short", None),
        (
            aiohttp.ClientResponseError(INFO, (), status=400, message="bad"),
            "broken answer: 400, message='bad'",
            None,
        ),
        (TimeoutError(), "timeout", None),
        (aiohttp.ClientError(), "ClientError: ClientError", None),
    ],
)
def test_each_failure_is_one_line_saying_whether_it_may_have_been_sent(
    exc: aiohttp.ClientError | TimeoutError, begins: str, maybe_sent: bool | None, mutating: bool
) -> None:
    answer = failed(exc, PROXY, mutating)
    assert answer.status is None and answer.failure is not None
    assert answer.failure.startswith(begins), answer.failure
    assert "\n" not in answer.failure and "secret" not in answer.failure
    # None: sent as far as the client knows, so a mutating one may have taken effect
    assert answer.maybe_sent is (mutating if maybe_sent is None else maybe_sent)


def test_a_failure_text_is_cut_at_200_characters() -> None:
    answer = failed(aiohttp.ClientPayloadError("x" * 500), None, True)
    assert answer.failure == "broken answer: " + "x" * 200
    assert failed(aiohttp.ClientPayloadError(""), None, True).failure == (
        "broken answer: ClientPayloadError"
    )
    refused = failed(_proxy_refused(407), PROXY, True).failure or ""
    assert refused.endswith("(it wants credentials: put user:password@ in the proxy URL)")
