"""A worker's place in the queue: its consumer name, its claims' leases, the queue's marker.

Consumer names are unique by construction: a worker registers its name with a lease
(``STREAM:consumers``) when it starts and renews it every third of the lease; a second live
worker with the same ``--consumer`` waits one lease for the name (a worker killed just before
frees it), then stops with `ConsumerClash` (exit 2). The claims a worker took for the ids in
flight (`worker.fleet.scripts`, ``BEGIN``) are renewed with the name, in the same script, as
is the idle time of their entries (XCLAIM JUSTID). `open` also learns the queue's marker
(``epoch``), which every later script checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker.errors import ConfigError
from worker.fleet import scripts
from worker.fleet.connect import Keys
from worker.fleet.lifeline import Lifeline

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class ReadOptions:
    group: str
    consumer: str
    batch: int = 64
    block_ms: int = 1000  # keep below the client's socket timeout (redis-py#2807)
    claim_idle_ms: int = 60_000
    until_empty: bool = False

    @property
    def claim_lease_ms(self) -> int:
        """A claim lapses a little before its entry may be claimed, so that the worker that
        claims a dead worker's entry finds its claim lapsed, and reconciles it."""
        return max(1, round(self.claim_idle_ms * 0.9))

    @property
    def name_lease_ms(self) -> int:
        return min(self.claim_idle_ms, 15_000)


class ConsumerClash(ConfigError):
    """Another live worker has the same consumer name."""


class Lease:
    def __init__(self, redis: Redis, lifeline: Lifeline, keys: Keys, options: ReadOptions):
        self.epoch = ""  # the queue's marker, learnt by `open`
        self._redis = redis
        self._lifeline = lifeline
        self._keys = keys
        self._options = options
        self._token = uuid.uuid4().hex  # this process, among workers of the same name

    async def open(self, *, clock: Any = time.monotonic, sleep: Any = asyncio.sleep) -> None:
        """Make the queue's marker and group when new; take the consumer name. A name held by
        a live worker is waited for one lease (a worker killed just before frees it), then
        `ConsumerClash`."""
        give_up = clock() + self._options.name_lease_ms / 1000 + 1.0
        while True:
            epoch, held_ms = await self._lifeline.call("open", self._run_open)
            self.epoch = str(epoch)
            if int(held_ms) == 0:
                return
            if clock() >= give_up:
                raise ConsumerClash(
                    f"another live worker is named {self._options.consumer!r} on "
                    f"{self._keys.stream} (group {self._options.group}): two workers with one "
                    "name would take each other's entries. Give each worker its own "
                    "--consumer (e.g. %H-%i in a systemd template), or stop the other one."
                )
            await sleep(min(int(held_ms) / 1000 + 0.05, 0.5))

    async def _run_open(self) -> list[Any]:
        keys = [self._keys.stream, self._keys.meta, self._keys.names]
        args = [self._options.group, uuid.uuid4().hex, self._options.consumer, self._token]
        reply: list[Any] = await scripts.OPEN_LUA(
            self._redis, keys, [*args, self._options.name_lease_ms]
        )
        return reply

    async def close(self) -> None:
        """Free the consumer name for a restart (best effort: it lapses anyway)."""
        keys = [self._keys.names]
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await scripts.RELEASE_LUA(self._redis, keys, [self._options.consumer, self._token])

    async def renew(self, inflight: dict[str, list[str]]) -> None:
        """The name, the claims of the ids in ``inflight`` and their entries' idle time."""
        options = self._options
        session_ids = list(inflight)
        entry_ids = [entry for entries in inflight.values() for entry in entries]
        keys = [self._keys.claims, self._keys.names, self._keys.stream, self._keys.meta]
        args: list[Any] = [options.group, options.consumer, self._token, options.claim_lease_ms]
        args += [options.name_lease_ms, self.epoch, len(session_ids), *session_ids, *entry_ids]
        reply = await scripts.RENEW_LUA(self._redis, keys, args)
        if int(reply[0]) == 0:
            raise ConsumerClash(
                f"another worker took the name {options.consumer!r} while this one could not "
                "reach Redis; stopped (its entries stay pending). Give each worker its own "
                "--consumer."
            )
