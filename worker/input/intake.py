"""Turn any source of ids into the async stream of ``InputItem`` the pipeline reads.

Files and stdin are read by a daemon thread in batches, so a slow upstream (``list | run -``)
never blocks the event loop. Back-pressure: the thread waits while a few batches are
queued, so memory stays flat.

A run interrupted while its input is silent (``sleep 100 | devin-terminate run -``) must
still exit with its code (143 for SIGTERM). The thread reads unbuffered streams only
(`worker.input.opening` reads stdin through a duplicate of its descriptor), so it never
holds the lock of a buffered object that the interpreter takes at shutdown; when the
consumer stops, the thread stops at its next batch instead of waiting on the queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TypeVar

from worker.errors import InputError
from worker.input.ids import InvalidId, parse_session_id
from worker.input.lines import IdRun
from worker.input.sources import InputItem

T = TypeVar("T")
_BATCH = 512
_DONE = object()
_POLL_S = 0.5
_SLOTS = 4


class _Reader:
    """The thread's side: batches into the loop's queue until done or told to stop.

    At most ``_SLOTS`` batches wait in the queue (a semaphore the consumer releases);
    batches are handed over with ``call_soon_threadsafe``, so no coroutine is left
    unawaited when the loop closes first.
    """

    def __init__(self, items: Iterator[object], loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.slots = threading.Semaphore(_SLOTS)
        self.stop = threading.Event()
        self._items = items
        self._loop = loop

    def produce(self) -> None:
        try:
            while not self.stop.is_set() and (batch := self._batch()):
                if not self._put(batch):
                    return
            final: object = _DONE
        except BaseException as exc:  # handed to the event loop, raised there
            final = exc
        self._put(final)

    def _batch(self) -> list[object]:
        """The next entries, until they hold `_BATCH` ids or more (a run of plain ids counts
        its ids: one block's at most past it), so that what waits in the queue stays
        bounded in ids, not in entries."""
        batch: list[object] = []
        size = 0
        for item in self._items:
            batch.append(item)
            size += len(item.ids) if isinstance(item, IdRun) else 1
            if size >= _BATCH:
                break
        return batch

    def _put(self, value: object) -> bool:
        """Hand ``value`` to the loop; False once the consumer has gone."""
        while not self.slots.acquire(timeout=_POLL_S):
            if self.stop.is_set():
                return False
        if self.stop.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, value)
        except RuntimeError:  # the loop is closed: nobody is listening
            return False
        return True


async def threaded(items: Iterator[T]) -> AsyncIterator[T]:
    """Iterate a blocking iterator in a daemon thread; exceptions surface here, in order."""
    reader = _Reader(items, asyncio.get_running_loop())
    threading.Thread(target=reader.produce, name="devin-terminate-reader", daemon=True).start()
    try:
        while True:
            batch = await reader.queue.get()
            reader.slots.release()
            if batch is _DONE:
                return
            if isinstance(batch, BaseException):
                raise batch
            assert isinstance(batch, list)
            for item in batch:
                yield item
    finally:
        reader.stop.set()


async def until_input_error(
    items: AsyncIterator[T], failures: list[InputError]
) -> AsyncIterator[T]:
    """``items`` until one raises `InputError`, which is kept in ``failures`` instead of
    escaping into the pipeline's task group: the caller lets the sessions already started
    finish, then raises it (one line, exit 2) rather than a traceback."""
    try:
        async for item in items:
            yield item
    except InputError as exc:
        failures.append(exc)


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
