"""Who am I: ``GET /v3/self`` through the run's client before the first DELETE of every run.

It stops the run (exit 3, one line, nothing sent, no session recorded) when the API cannot
be reached (DNS, refused connection, TLS), when the base URL does not lead to the API (404),
when the token is refused (401/403), or when the token belongs to another org than
``--org-id`` (an enterprise-scoped token, whose org is null, may act on any org). A flaky
gateway is given a few quick retries (5xx, 429, a dropped or hung request, a garbled 200)
through the run's attempt loop; when none of them is readable the run goes on with a
warning (the DELETEs have their own retries and breaker). A refused connection, an
unknown host or a TLS failure is final at once. Org ids are not secrets and are named in
every message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from worker._names import TOKEN_ENV
from worker.devin.answer import Answer
from worker.devin.client import DevinClient
from worker.errors import AuthError, PreflightError
from worker.outcomes import Tally
from worker.run.backoff import Backoff
from worker.run.exchange import Exchange
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy

log = structlog.get_logger("worker.identity")

_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# transport failures that another try within seconds will not mend
_FATAL_FAILURES = ("cannot connect", "tls", "connect timeout", "proxy")
_ORG_ID = re.compile(r"org-[A-Za-z0-9_-]{1,128}")
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # a service user id: named in the result log
ATTEMPTS = 5
_FIRST_DELAY = 0.2  # full jitter under 0.2, 0.4, 0.8, 1.6 s between the attempts
_MAX_DELAY = 2.0  # a longer Retry-After is not waited: the preflight must answer in seconds


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the token is: its org (None: enterprise-scoped, or not known) and its service
    user id (None: not known), as ``GET /v3/self`` said."""

    org: str | None = None
    principal: str | None = None


async def check_identity(
    client: DevinClient,
    *,
    org_id: str,
    base_url: str,
    token_from: str = TOKEN_ENV,
    org_from: str = "--org-id",
) -> Identity:
    """Raise ``PreflightError``/``AuthError`` unless the token may act on ``org_id`` at
    ``base_url``; return who the token is (nothing known when a flaky API gave no readable
    answer after the retries: the DELETEs have their own). ``token_from``, ``org_from``:
    where the token and the org id came from, as the messages name them."""
    url = f"{base_url.rstrip('/')}/v3/self"
    answer = await _ask(client)
    _refuse(answer, url, base_url, token_from)
    me = _body(answer)
    if me is None:
        log.warning(
            "self.unverified",
            url=url,
            error=_line(answer.error if answer.status != 200 else "unreadable answer"),
            hint="the org of the token could not be checked; going on",
        )
        return Identity()
    principal = me.get("service_user_id")
    principal = principal if isinstance(principal, str) and _ID.fullmatch(principal) else None
    org = me.get("org_id")
    if org is not None and not (isinstance(org, str) and _ORG_ID.fullmatch(org)):
        # not an org id at all (a mock's placeholder, a garbled field): nothing to compare
        log.warning("self.unverified", url=url, error=f"org_id {_line(repr(org))[:80]}")
        return Identity(None, principal)
    token_org = org or None
    if token_org is not None and token_org != org_id:
        raise PreflightError(
            f"the token belongs to org {token_org}, not to {org_id} (the org id from "
            f"{org_from}); nothing was sent. Use org id {token_org} there, or a token of "
            f"{org_id}."
        )
    log.debug("self.checked", org_id=org_id, scope=token_org or "enterprise")
    return Identity(token_org, principal)


def _refuse(answer: Answer, url: str, base_url: str, token_from: str) -> None:
    """Raise for the answers that make the run pointless; the transient ones pass."""
    if _transient(answer):
        return
    if answer.status is None:
        raise PreflightError(
            f"cannot reach the API at {url}: {_line(answer.error)}; check --base-url and the "
            "network. Nothing was sent."
        )
    if answer.status in (401, 403):
        raise AuthError(
            f"the API refused the token at {url}: {_line(answer.error)}; check {token_from}. "
            "Nothing was sent."
        )
    if answer.status == 404:
        raise PreflightError(
            f"GET {url} answered 404: --base-url {base_url} does not lead to the Devin API "
            "(an extra path such as /v3?); it should look like https://api.devin.ai. "
            "Nothing was sent."
        )
    if answer.status != 200:
        raise PreflightError(f"GET {url} failed: {_line(answer.error)}. Nothing was sent.")


async def _ask(client: DevinClient) -> Answer:
    """``GET /v3/self`` through the run's attempt loop (`Exchange.ask`), under a policy of
    its own: `ATTEMPTS` quick tries, a Retry-After longer than `_MAX_DELAY` not waited."""
    quick = RetryPolicy(
        max_attempts=ATTEMPTS,
        session_timeout=math.inf,
        backoff=Backoff(_FIRST_DELAY, _MAX_DELAY, retry_after_max=_MAX_DELAY),
    )
    x = Exchange(RateGate(None), quick, Halt(), Tally())
    answer, _ = await x.ask(quick.start(), client.whoami, lambda a: not _transient(a))
    assert answer is not None  # nothing halts this loop but the policy, after one attempt
    return answer


def _transient(answer: Answer) -> bool:
    """Worth another try within seconds: 5xx, 429, a dropped or hung request, a garbled 200."""
    if answer.status == 200:
        return _body(answer) is None
    if answer.status is not None:
        return answer.status in _TRANSIENT_STATUSES
    failure = (answer.failure or "").lower()
    return not failure.startswith(_FATAL_FAILURES)


def _body(answer: Answer) -> dict[str, Any] | None:
    if answer.status != 200:
        return None
    try:
        data = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _line(text: str) -> str:
    """One line of at most 300 characters: an error text may come from a hostile server."""
    return " ".join(text.split())[:300]
