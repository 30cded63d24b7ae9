"""Turn any source of ids into the async stream of ``InputItem`` the pipeline reads.

Files and stdin are read by a daemon thread in batches, so a slow upstream (``list | run -``)
never blocks the event loop, and a run interrupted while stdin is silent can still exit.
Back-pressure: the thread waits while a few batches are queued, so memory stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from itertools import islice

from worker.ids import InvalidId, parse_session_id
from worker.sources import InputItem

_BATCH = 512
_DONE = object()


async def threaded(items: Iterator[InputItem]) -> AsyncIterator[InputItem]:
    """Iterate a blocking iterator in a daemon thread; exceptions surface here, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=4)

    def produce() -> None:
        try:
            while batch := list(islice(items, _BATCH)):
                asyncio.run_coroutine_threadsafe(queue.put(batch), loop).result()
            final: object = _DONE
        except BaseException as exc:  # handed to the event loop, raised there
            final = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            asyncio.run_coroutine_threadsafe(queue.put(final), loop).result()

    threading.Thread(target=produce, name="devin-terminate-reader", daemon=True).start()
    while True:
        batch = await queue.get()
        if batch is _DONE:
            return
        if isinstance(batch, BaseException):
            raise batch
        assert isinstance(batch, list)
        for item in batch:
            yield item


def item_for(raw: object, source: str) -> InputItem:
    """An ``InputItem`` for one id handed to the library."""
    text = raw if isinstance(raw, str) else str(raw)
    try:
        return InputItem(source=source, session_id=parse_session_id(text))
    except InvalidId as exc:
        return InputItem(source=source, session_id=None, error=str(exc), raw=text[:200])


async def from_ids(
    ids: Iterable[object] | AsyncIterable[object] | asyncio.Queue[object], name: str = "ids"
) -> AsyncIterator[InputItem]:
    """Items from an iterable, an async iterable, or an ``asyncio.Queue`` ended by ``None``."""
    if isinstance(ids, asyncio.Queue):
        number = 0
        while (raw := await ids.get()) is not None:
            number += 1
            yield item_for(raw, f"{name}:{number}")
    elif isinstance(ids, AsyncIterable):
        number = 0
        async for raw in ids:
            number += 1
            yield item_for(raw, f"{name}:{number}")
    else:
        for number, raw in enumerate(ids, start=1):
            yield item_for(raw, f"{name}:{number}")
