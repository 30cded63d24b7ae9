"""The pager of ``list``: ``GET /v3/organizations/{org_id}/sessions`` one page at a time."""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from worker.devin.answer import Answer
from worker.devin.client import DevinClient
from worker.devin.models import SessionPage
from worker.devin.network import QueryValue
from worker.errors import AuthError, ConfigError, PagingError
from worker.outcomes import Tally
from worker.run.exchange import Exchange
from worker.run.gate import RateGate
from worker.run.halt import Halt
from worker.run.retry import RetryPolicy
from worker.settings import Settings

log = structlog.get_logger("worker.commands.listing")
MAX_PAGES = 50_000  # 10 million sessions at 200 a page: beyond, the pages do not end
MAX_EMPTY_PAGES = 20  # empty pages in a row that still say there is a next one


class Pager:
    """One page at a time, every attempt through the run's attempt loop (`Exchange.ask`:
    the rate gate, the RetryPolicy's attempts, deadline, backoff, Retry-After cap). Paging
    always ends: every cursor used is remembered, and a cursor that comes back,
    `MAX_EMPTY_PAGES` empty pages in a row that say there is more, or `MAX_PAGES` pages
    raise `PagingError` (exit 3)."""

    def __init__(self, settings: Settings) -> None:
        self._policy = RetryPolicy.from_settings(settings)
        self.gate = RateGate(
            settings.rate or None,
            burst=settings.burst,
            adaptive=settings.adaptive,
            max_pause=settings.retry_after_max,
        )
        # the run's attempt loop: the gate, the policy, the throttle breaker (no slots)
        self._exchange = Exchange(self.gate, self._policy, Halt(), Tally())
        self.pages = 0
        self.complete = True
        self._cursors: set[str] = set()
        self._empty = 0  # empty pages in a row

    async def fetch(
        self, client: DevinClient, query: Mapping[str, QueryValue]
    ) -> SessionPage | None:
        """The next page, through the one attempt loop (`Exchange.ask`); None when the
        policy gave up (the CSV printed so far is partial)."""
        pages: list[SessionPage] = []

        async def send() -> Answer:
            answer, page = await client.list_sessions(query)
            pages[:] = [page] if page is not None else []
            return answer

        def settled(answer: Answer) -> bool:
            if not pages:
                _refuse(answer.status, answer.error)
            return bool(pages)

        tries = self._policy.start()

        def retrying(answer: Answer, wait: float) -> None:
            log.debug("list.retry", attempt=tries.attempts, error=answer.error, page=self.pages + 1)

        _, stop = await self._exchange.ask(tries, send, settled, retrying=retrying)
        if pages:
            self.pages += 1
            return pages[0]
        log.error(
            "list.gave_up", pages=self.pages, error=stop, hint="the CSV printed so far is partial"
        )
        self.complete = False
        return None

    def advance(self, page: SessionPage, query: dict[str, QueryValue]) -> bool:
        """Point ``query`` at the next page; False when there is none (or it cannot move)."""
        if not page.has_next_page:
            return False
        cursor = page.end_cursor
        self._empty = 0 if page.items else self._empty + 1
        if not cursor or cursor in self._cursors or cursor == query.get("after"):
            why = "no cursor" if not cursor else f"a cursor it gave before ({cursor[:60]!r})"
            raise self._endless(f"page {self.pages} says there is a next page but gives {why}")
        if self._empty >= MAX_EMPTY_PAGES:
            raise self._endless(f"{self._empty} empty pages in a row still say there is a next")
        if self.pages >= MAX_PAGES:
            raise self._endless(f"more than {MAX_PAGES} pages")
        self._cursors.add(cursor)
        query["after"] = cursor
        return True

    def _endless(self, what: str) -> PagingError:
        self.complete = False
        return PagingError(
            f"the API's session list does not end: {what}; stopped after {self.pages} "
            "pages, the CSV printed so far is partial"
        )


def _refuse(status: int | None, error: str) -> None:
    """Raise for answers no retry can mend: a refused token, a refused query."""
    if status in (401, 403):
        raise AuthError(
            f"the API refused the token ({error}); listing needs a service-user key with "
            "ViewOrgSessions for this organization: check the token and the org id"
        )
    if status is not None and status != 429 and 400 <= status < 500:
        raise ConfigError(f"the API rejected the list query ({error}); check the filters")
