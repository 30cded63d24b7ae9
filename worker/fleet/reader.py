"""The stream as the pipeline's input: an async iterator of ``InputItem`` read with XREADGROUP.

On start the worker opens the queue (`open`): it registers its consumer name with a lease
(a second live worker with the same name stops with `ConsumerClash`, exit 2) and learns the
queue's marker, which every later script checks (a Redis restarted empty is `QueueLost`).
Then it re-reads its own pending entries (id ``0``: what it was handed before a crash), then
new ones (``>``). Between reads it claims entries left pending by dead consumers for longer
than ``claim_idle`` (XAUTOCLAIM). Each batch goes through the ``BEGIN`` script, which takes a
claim per id (`worker.fleet.scripts`): ids settled earlier by any worker, and second entries
of an id another live worker holds, are acknowledged and never sent; ids whose DELETE may have
gone out before start uncertain (`uncertain`). The entries behind each id in flight are kept
in `inflight` for the sink, which acknowledges them once the result is recorded;
`keep_alive` renews the name, the claims and the entries' idle time.

``until_empty``: the iterator ends when nothing new arrives, nothing can be claimed, and no
entry is pending with another consumer (so a cron run waits for a dead worker's entries to
become claimable rather than leave them behind).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import structlog

from worker.fleet import scripts
from worker.fleet.connect import Keys
from worker.fleet.lease import Lease, ReadOptions
from worker.fleet.lifeline import Lifeline
from worker.input.ids import InvalidId, parse_session_id
from worker.input.sources import InputItem
from worker.outcomes import Tally

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("worker.fleet.reader")

Entry = tuple[str, dict[str, str] | None]


class StreamReader:
    def __init__(
        self, redis: Redis, lifeline: Lifeline, keys: Keys, options: ReadOptions, tally: Tally
    ) -> None:
        self.inflight: dict[str, list[str]] = {}
        self.uncertain: set[str] = set()
        # recorded in the log, settle in Redis still to come: left alone if delivered again
        self.awaiting: set[str] = set()
        self.redis = redis
        self.lifeline = lifeline
        self.keys = keys
        self.options = options
        self.lease = Lease(redis, lifeline, keys, options)
        self._tally = tally
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    async def open(self, *, clock: Any = time.monotonic, sleep: Any = asyncio.sleep) -> None:
        """Make the queue's marker and group when new; take the consumer name (`Lease`)."""
        await self.lease.open(clock=clock, sleep=sleep)

    async def close(self) -> None:
        await self.lease.close()

    async def items(self) -> AsyncIterator[InputItem]:
        """Own pending entries first, then claimed and new ones, until stopped or empty.

        After an outage the own pending entries are read again: a reply lost with the
        connection may have delivered entries that no ``>`` read will show again.
        """
        seen_recoveries = -1
        while True:
            if seen_recoveries != self.lifeline.recoveries:
                seen_recoveries = self.lifeline.recoveries
                async for item in self._own_pending():
                    yield item
            entries = await self._call("claim", self._claim) if self._claim_due() else []
            block = None if entries else self._block()
            entries += await self._call("read", self._read, ">", block)
            if not entries and self.options.until_empty and await self._call("check", self._quiet):
                return
            for item in await self._admit(entries):
                yield item

    async def keep_alive(self) -> None:
        """Every third of the name's lease: renew the name, the claims of the ids in flight,
        and the idle time of their entries, so a session that waits long (Retry-After,
        backoff) is not claimed from a live worker and sent twice."""
        while True:
            await asyncio.sleep(self.options.name_lease_ms / 3000)
            await self._call("keep alive", self._touch)

    async def _touch(self) -> None:
        await self.lease.renew(self.inflight)

    def _block(self) -> int:
        """How long a read waits for new entries; a draining worker looks again sooner."""
        return (
            min(self.options.block_ms, 250) if self.options.until_empty else self.options.block_ms
        )

    async def _own_pending(self) -> AsyncIterator[InputItem]:
        last = "0"
        while entries := await self._call("read pending", self._read, last):
            last = entries[-1][0]
            for item in await self._admit(entries):
                yield item

    async def _call(self, what: str, fn: Any, *args: Any) -> Any:
        return await self.lifeline.call(what, lambda: fn(*args))

    async def _read(self, last: str, block: int | None = None) -> list[Entry]:
        """Own pending entries after ``last``, or new ones (``>``)."""
        options = self.options
        streams: dict[Any, Any] = {self.keys.stream: last}
        reply = await self.redis.xreadgroup(
            options.group, options.consumer, streams, count=options.batch, block=block
        )
        return _entries(reply)

    def _claim_due(self) -> bool:
        """Claim at most every tenth of ``claim_idle`` (no entry turns idle faster), or on
        each pass while a scan of the pending list is under way."""
        now = time.monotonic()
        if self._claim_cursor == "0-0" and now < self._next_claim:
            return False
        self._next_claim = now + self.options.claim_idle_ms / 10_000
        return True

    async def _claim(self) -> list[Entry]:
        reply = await self.redis.xautoclaim(
            self.keys.stream,
            self.options.group,
            self.options.consumer,
            self.options.claim_idle_ms,
            start_id=self._claim_cursor,
            count=self.options.batch,
        )
        self._claim_cursor = str(reply[0])
        claimed: list[Entry] = [(str(e[0]), e[1]) for e in reply[1] if e[0] is not None]
        if claimed:
            log.info("fleet.claimed", entries=len(claimed), consumer=self.options.consumer)
        return claimed

    async def _quiet(self) -> bool:
        """Nothing pending with anyone but this consumer's own entries in flight."""
        summary = await self.redis.xpending(self.keys.stream, self.options.group)
        mine = sum(len(entries) for entries in self.inflight.values())
        return int(summary["pending"]) <= mine

    async def _admit(self, entries: list[Entry]) -> list[InputItem]:
        """The items to send; acknowledges what needs no request (settled, empty, invalid)."""
        fresh, drop = self._sort(entries)
        items: list[InputItem] = []
        if fresh:
            codes = await self._call("begin", self._run_begin, fresh)
            for (session_id, (ids, source)), code in zip(fresh.items(), codes, strict=True):
                if code in (2, 3):  # settled, or a second entry of an id another worker holds
                    self._tally.counts["skipped"] += 1
                    drop.extend(ids)
                    continue
                if code == 4:  # the very entry another live worker holds: its keep-alive
                    continue  # takes it back
                self.inflight[session_id] = ids
                if code == 1:
                    self.uncertain.add(session_id)
                items.append(InputItem(source=source, session_id=session_id))
        if drop:
            await self._call("discard", self._run_discard, drop)
        return items

    def _sort(self, entries: list[Entry]) -> tuple[dict[str, tuple[list[str], str]], list[str]]:
        """New ids (with their entries and source), and the entries to drop unsent."""
        fresh: dict[str, tuple[list[str], str]] = {}
        drop: list[str] = []
        for entry_id, fields in entries:
            session_id, source = _parse(entry_id, fields)
            if session_id is None:
                drop.append(entry_id)
            elif session_id in self.awaiting:
                continue  # its settle acknowledges this entry, or a later claim finds it
            elif session_id in self.inflight:
                self.inflight[session_id].append(entry_id)
            elif session_id in fresh:
                fresh[session_id][0].append(entry_id)
            else:
                fresh[session_id] = ([entry_id], source)
        return fresh, drop

    async def _run_begin(self, fresh: dict[str, tuple[list[str], str]]) -> list[int]:
        keys = [self.keys.settled, self.keys.claims, self.keys.meta]
        args: list[Any] = [self.options.consumer, self.options.claim_lease_ms, self.lease.epoch]
        for session_id, (entries, _) in fresh.items():
            args += [session_id, entries[0]]
        reply = await scripts.BEGIN_LUA(self.redis, keys, args)
        return [int(code) for code in reply]

    async def _run_discard(self, entry_ids: list[str]) -> None:
        keys = [self.keys.stream, self.keys.meta]
        await scripts.DISCARD_LUA(
            self.redis, keys, [self.options.group, self.lease.epoch, *entry_ids]
        )


def _entries(reply: Any) -> list[Entry]:
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (s[1] for s in reply)
    out: list[Entry] = []
    for stream in streams:
        if isinstance(stream, list) and stream and isinstance(stream[0], list):
            stream = stream[0]  # RESP3 wraps each stream's entries once more
        out.extend((str(entry_id), fields) for entry_id, fields in stream)
    return out


def _parse(entry_id: str, fields: dict[str, str] | None) -> tuple[str | None, str]:
    """The entry's session id (None when it has none: trimmed, or not ours) and source."""
    if not fields:
        log.info("fleet.entry_empty", entry=entry_id, hint="trimmed or deleted; acknowledged")
        return None, ""
    source = str(fields.get("src") or f"stream:{entry_id}")[:300]
    try:
        return parse_session_id(str(fields.get("id", ""))), source
    except InvalidId as exc:
        log.warning("fleet.entry_invalid", entry=entry_id, error=str(exc), source=source)
        return None, source
