"""The HTTP seam: with `worker.devin.failures`, the only module that knows aiohttp's
exceptions.

Every call returns an ``Answer``: an HTTP status with a parsed body, or the kind of transport
failure that happened. Nothing here retries or decides outcomes; ``terminate`` does that.
The request path is built from an id that was validated and is percent-encoded again, so
no id can leave ``/v3/organizations/{org_id}/sessions/``. Bodies are read in chunks up to
``max_body`` (4 MiB): a larger answer is cut off as "answer too large", so a hostile
server cannot fill the memory.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from worker._version import __version__
from worker.devin.answer import Answer
from worker.devin.failures import failed
from worker.devin.network import QueryValue, query_pairs, resolve_proxy, tls_context
from worker.devin.retry_after import parse_retry_after

if TYPE_CHECKING:
    from pydantic import BaseModel

    from worker.devin.models import ServiceUserSelf, SessionPage
    from worker.outcomes import Tally
    from worker.settings import Settings

_Model = TypeVar("_Model", bound="BaseModel")
MAX_BODY = 4 * 1024 * 1024  # bytes of one answer read at most; a larger one is a failure
_CHUNK = 64 * 1024
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+", re.ASCII)  # what quote() leaves as it is


@dataclass(frozen=True, slots=True)
class ClientOptions:
    base_url: str
    org_id: str
    token: str
    timeout: float = 30.0
    concurrency: int = 8
    ca_bundle: str | None = None
    max_body: int = MAX_BODY
    proxy: str | None = None  # resolved once (worker.devin.network.resolve_proxy)

    @classmethod
    def from_settings(cls, settings: Settings, token: str) -> ClientOptions:
        return cls(
            base_url=settings.base_url,
            org_id=settings.org_id or "",
            token=token,
            timeout=settings.timeout,
            concurrency=settings.in_flight_max,
            ca_bundle=str(settings.ca_bundle) if settings.ca_bundle else None,
            proxy=resolve_proxy(settings.base_url, settings.proxy),
        )


class DevinClient:
    """One ``aiohttp.ClientSession`` per run, with the token in its default headers.
    ``tally``: every request is counted there, in flight and by what came back."""

    def __init__(self, options: ClientOptions, *, tally: Tally | None = None) -> None:
        self._options = options
        self._tally = tally
        self._prefix = (
            f"{options.base_url.rstrip('/')}/v3/organizations/{quote(options.org_id, safe='')}"
        )
        # the prefix parsed once: a session's URL is built from its parts (`session_url`)
        prefix = URL(self._prefix, encoded=True)
        self._scheme, self._authority = prefix.scheme, prefix.raw_authority
        self._sessions_path = f"{prefix.raw_path}/sessions/"
        self._session: aiohttp.ClientSession | None = None
        # Through a proxy the token goes with each request: aiohttp sends a session's default
        # headers to the proxy too (Authorization as Proxy-Authorization, 3.14). Direct, it is
        # one of the default headers (a merge of headers less on every request).
        auth = {"Authorization": f"Bearer {options.token}"}
        self._fixed: dict[str, Any] = {"allow_redirects": False, "proxy": options.proxy}
        self._auth: dict[str, str] = {}
        if options.proxy is None:
            self._auth = auth
        else:
            self._fixed["headers"] = auth

    async def __aenter__(self) -> DevinClient:
        opts = self._options
        ssl_context = tls_context(opts.base_url, opts.ca_bundle)
        connector = aiohttp.TCPConnector(
            limit=opts.concurrency + 2,
            limit_per_host=opts.concurrency + 2,
            ttl_dns_cache=300,
            keepalive_timeout=4.0,
            ssl=ssl_context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=opts.timeout, sock_connect=min(opts.timeout, 10.0)),
            headers={
                "Accept": "application/json",
                "User-Agent": f"devin-terminate/{__version__}",
                **self._auth,
            },
            raise_for_status=False,
        )
        # aiohttp re-sends an idempotent request once, silently, when a kept-alive connection
        # drops. Our retry loop must know about every send to tell a repeat from a first
        # answer, so that hidden retry is switched off (private attribute, aiohttp >= 3.10).
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)

    def session_url(self, session_id: str, tail: str = "", query: str = "") -> URL:
        """``.../sessions/{id}{tail}?{query}``, the id percent-encoded (a valid one, letters,
        digits, ``-`` and ``_``, is its own encoding), built from the parts of the prefix
        parsed once and marked encoded: aiohttp would otherwise parse the whole URL and
        re-encode it and its query on every request."""
        quoted = session_id if _UNRESERVED.fullmatch(session_id) else quote(session_id, safe="")
        return URL.build(
            scheme=self._scheme,
            authority=self._authority,
            path=f"{self._sessions_path}{quoted}{tail}",
            query_string=query,
            encoded=True,
        )

    async def terminate(self, session_id: str, *, archive: bool) -> Answer:
        query = "archive=true" if archive else "archive=false"
        url = self.session_url(session_id, query=query)
        return await self._send("DELETE", url, None, mutating=True)

    async def archive(self, session_id: str) -> Answer:
        """``POST .../sessions/{id}/archive``: archive a session (a running one is put to sleep)."""
        url = self.session_url(session_id, "/archive")
        return await self._send("POST", url, None, mutating=True)

    async def get_session(self, session_id: str) -> Answer:
        return await self._send("GET", self.session_url(session_id), None, mutating=False)

    async def whoami(self) -> Answer:
        base = self._options.base_url.rstrip("/")
        return await self._send("GET", f"{base}/v3/self", None, mutating=False)

    async def list_sessions(
        self, query: Mapping[str, QueryValue]
    ) -> tuple[Answer, SessionPage | None]:
        from worker.devin.models import SessionPage  # pydantic models: not at start-up

        answer = await self._send(
            "GET", f"{self._prefix}/sessions", query_pairs(query), mutating=False
        )
        return answer, _parsed(answer, SessionPage)

    async def self_info(self) -> tuple[Answer, ServiceUserSelf | None]:
        from worker.devin.models import ServiceUserSelf  # pydantic models: not at start-up

        answer = await self.whoami()
        return answer, _parsed(answer, ServiceUserSelf)

    async def _send(
        self,
        method: str,
        url: str | URL,
        params: Sequence[tuple[str, str]] | Mapping[str, str] | None,
        *,
        mutating: bool,
    ) -> Answer:
        """One request, counted in the tally: in flight until it ends, then by what came back
        (cancelled at shutdown: counted as sent, with no answer)."""
        assert self._session is not None, "use DevinClient as an async context manager"
        tally = self._tally
        if tally is not None:
            tally.in_flight += 1
        status: int | None = None
        try:
            async with self._session.request(method, url, params=params, **self._fixed) as resp:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                body = await _read_capped(resp, self._options.max_body)
                status = resp.status
                if body is None:
                    resp.close()  # drop the connection: the rest of the body is never read
                    too_large = f"answer too large (> {_mib(self._options.max_body)})"
                    return Answer(status, b"", retry_after, failure=too_large)
                return Answer(status, body, retry_after)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return failed(exc, self._options.proxy, mutating)
        finally:
            if tally is not None:
                tally.in_flight -= 1
                tally.answered(method, status)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, read in chunks; None as soon as it exceeds ``limit`` bytes (or says it will)."""
    if resp.content_length is not None and resp.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while chunk := await resp.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _mib(size: int) -> str:
    return f"{size / 1048576:g} MiB" if size >= 1048576 else f"{size} bytes"


def _parsed(answer: Answer, model: type[_Model]) -> _Model | None:
    """The body of a 200 as ``model``; None for another status or a body it does not fit."""
    if answer.status != 200:
        return None
    try:
        return model.model_validate_json(answer.body)
    except ValueError:
        return None
