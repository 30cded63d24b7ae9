"""The Lua scripts of the queue (``queue_*.lua``), and how they are sent (EVALSHA, loaded again
on NOSCRIPT).

Every script first checks the queue's marker (``STREAM:meta``, field ``epoch``): a Redis that
restarted without its data has no marker, or another one (``enqueue`` made a new one), and the
script answers ``LOSTQUEUE`` instead of acting on a queue that is not the one the worker was
given (`worker.fleet.connect.QueueLost`).

``OPEN`` (once, when a worker starts): the marker is made when there is none (a new queue), the
consumer group too, and the worker's name is registered with a lease: ``{epoch, 0}``, or
``{epoch, ms}`` when another live worker holds the name for ``ms`` more.

``BEGIN`` (one round trip per batch read): a **claim** per session id, with the worker's name,
the entry it came with and a lease, checked and set in one step. For each id: ``2`` when any
worker settled it (the entry is acknowledged, never sent again); ``3`` when another live worker
holds its claim for another entry (this one is a duplicate: acknowledged, not sent); ``4`` when
another live worker holds the claim for this very entry (left alone); ``1`` when a claim was
there but has lapsed, or is this worker's name from before a restart (a DELETE may have gone
out: the attempt starts uncertain, a 404 or 409 is reconciled with a GET); else ``0``.

Each script runs a fixed number of commands inside Redis, whatever its batch: one ``HMGET``
for the batch's ids, one ``HSET`` with every field, one ``XACK`` and one ``XDEL`` with every
entry (``INFO commandstats`` counts these too, beside the ``EVALSHA``).

``RENEW`` (every third of the shortest lease): the name's lease, the claims of the ids in
flight and the idle time of their entries (XCLAIM JUSTID). ``{0}`` when another worker took the
name meanwhile.

``SETTLE`` (after the results are in the worker's JSONL log; one call for a batch): a final
outcome is written to the settled hash first-writer-wins, and only the first writer appends it
to the results stream, so the fleet holds exactly one final record per id however often the id
was delivered; a ``failed`` result is appended as it is and its claim lapses at once (the id
can be enqueued again, and starts uncertain). The batch's records go to the results stream as
one entry (``records``: one JSON record a line). Then the entries are acknowledged and deleted
from the stream, in the same script: there is no moment where an entry is acknowledged and its
result not recorded. Running it twice (a reply lost to a dropped connection) changes nothing.
The marker counts the entries done (``done``, beside ``enqueued``): entries enqueued and
neither done nor in the stream were lost with Redis's data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(slots=True)
class Lua:
    """One script, sent as ``EVALSHA`` (one command); on ``NOSCRIPT`` (a restarted Redis, a
    ``SCRIPT FLUSH``) it is loaded once and sent again. redis-py's own ``Script`` objects
    send ``SCRIPT EXISTS`` before every pipeline that holds them: a second command each.
    (Each script is idempotent: running it again after a lost reply changes nothing.)"""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)


def _source(name: str) -> str:
    return resources.files("worker.fleet").joinpath(f"queue_{name}.lua").read_text("utf-8")


def _script(name: str) -> Lua:
    """``queue_NAME.lua`` after ``queue_prelude.lua`` (the clock, the marker's check, ...)."""
    return Lua(_source("prelude") + _source(name))


OPEN_LUA, BEGIN_LUA, RENEW_LUA = _script("open"), _script("begin"), _script("renew")
SETTLE_LUA, DISCARD_LUA = _script("settle"), _script("discard")
RELEASE_LUA = Lua(_source("release"))
