"""The pager of ``list``: ``GET /v3/organizations/{org_id}/sessions`` one page at a time."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from worker.devin.client import DevinClient, QueryValue
from worker.devin.models import SessionPage
from worker.errors import AuthError, ConfigError
from worker.run.gate import RateGate
from worker.run.retry import RetryPolicy
from worker.settings import Settings

log = structlog.get_logger("worker.commands.listing")


class Pager:
    """One page at a time, every attempt through the rate gate and the run's RetryPolicy
    (attempts, deadline, backoff, Retry-After cap); stops on a stuck cursor."""

    def __init__(self, settings: Settings) -> None:
        self._policy = RetryPolicy.from_settings(settings)
        self.gate = RateGate(
            settings.rate or None,
            burst=settings.burst,
            adaptive=settings.adaptive,
            max_pause=settings.retry_after_max,
        )
        self.pages = 0
        self.complete = True

    async def fetch(
        self, client: DevinClient, query: Mapping[str, QueryValue]
    ) -> SessionPage | None:
        tries = self._policy.start()
        while True:
            sent = await self.gate.acquire()
            tries.attempts += 1
            answer, page = await client.list_sessions(query)
            if answer.status == 429:
                self.gate.throttled(answer.retry_after, sent)
            else:
                self.gate.accepted(sent)
            if page is not None:
                self.pages += 1
                return page
            _refuse(answer.status, answer.error)
            wait = tries.next_wait(answer)
            if isinstance(wait, str):
                break
            log.debug("list.retry", attempt=tries.attempts, error=answer.error, page=self.pages + 1)
            await self._policy.sleep(wait)
        log.error(
            "list.gave_up", pages=self.pages, error=wait, hint="the CSV printed so far is partial"
        )
        self.complete = False
        return None

    def advance(self, page: SessionPage, query: dict[str, QueryValue]) -> bool:
        """Point ``query`` at the next page; False when there is none (or it cannot move)."""
        if not page.has_next_page:
            return False
        if not page.end_cursor or page.end_cursor == query.get("after"):
            log.error("list.cursor_stuck", pages=self.pages, cursor=page.end_cursor)
            self.complete = False
            return False
        query["after"] = page.end_cursor
        return True


def _refuse(status: int | None, error: str) -> None:
    """Raise for answers no retry can mend: a refused token, a refused query."""
    if status in (401, 403):
        raise AuthError(
            f"the API refused the token ({error}); listing needs a service-user key with "
            "ViewOrgSessions for this organization: check DEVIN_API_KEY and --org-id"
        )
    if status is not None and status != 429 and 400 <= status < 500:
        raise ConfigError(f"the API rejected the list query ({error}); check the filters")
