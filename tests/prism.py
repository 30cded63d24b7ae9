"""Prism mock servers for the contract check, one per mode, started once per test session.

The pytest controller (``conftest.pytest_configure``) installs Prism if needed and starts
the three servers in the background when ``tests/test_contract_prism.py`` is selected, so
that their boot (a few CPU-seconds of Node each) overlaps the workers' start and the other
tests; it hands them to the workers in ``PRISM_ENV`` and stops them at the end. When the
contract check cannot run, ``PRISM_ENV`` says why and the session ends with a banner
saying so; ``DEVIN_TERMINATE_REQUIRE_PRISM=1`` (set by ``.ci/run``) turns that into a
failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CONTRACT_DIR = REPO / "tests" / "contract"
CONTRACT_TESTS = REPO / "tests" / "test_contract_prism.py"
PRISM_BIN = CONTRACT_DIR / "node_modules" / ".bin" / "prism"
PRISM_VERSION = "5.14.2"
SPEC = REPO / "spec" / "devin-v3-sessions.openapi.yaml"
SEED = "20260"
MODES = ("static", "seeded", "random")
PRISM_ENV = "DEVIN_TERMINATE_PRISM_SERVERS"
REQUIRE_ENV = "DEVIN_TERMINATE_REQUIRE_PRISM"
LISTENING = "Prism is listening on"
BOOT_LIMIT = 120.0  # seconds; a busy 2-core machine boots three in ~10-30
NICE = 5  # the servers' scheduling priority, below the test workers


class PrismUnavailable(Exception):
    """The contract check cannot run here; the message says why and what to do."""


@dataclass
class Prism:
    mode: str
    port: int
    log_path: Path
    pid: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait_listening(self) -> None:
        deadline = time.monotonic() + BOOT_LIMIT
        while time.monotonic() < deadline and self.alive():
            if LISTENING in self.log():
                return
            time.sleep(0.05)
        raise AssertionError(f"Prism ({self.mode}) did not start:\n{self.log()}")


def _installed_version() -> str | None:
    manifest = CONTRACT_DIR / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    if not PRISM_BIN.exists() or not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def ensure_prism() -> None:
    """Install Prism from the lockfile (under a file lock) unless the pinned one is there."""
    CONTRACT_DIR.joinpath(".install.lock").touch()
    with open(CONTRACT_DIR / ".install.lock", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() == PRISM_VERSION:
            return
        npm, node = shutil.which("npm"), shutil.which("node")
        if npm is None or node is None:
            raise PrismUnavailable(
                "the Prism contract check needs Node.js >= 18.20 and npm on PATH "
                f"(node: {node}, npm: {npm}); install them, or run "
                "`npm ci --prefix tests/contract --ignore-scripts` where they are available"
            )
        cmd = [npm, "ci", "--prefix", str(CONTRACT_DIR), "--ignore-scripts", "--no-audit"]
        cmd += ["--no-fund", "--prefer-offline"]
        env = {**os.environ, "SCARF_ANALYTICS": "false"}
        done = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0 or _installed_version() != PRISM_VERSION:
            raise PrismUnavailable(
                f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
            )


def prism_spec(tmp: Path) -> Path:
    """The vendored spec with the one change described in test_contract_prism's docstring."""
    document = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    for item in document["paths"].values():
        for operation in item.values():
            for param in operation.get("parameters", []):
                branches = param["schema"].get("anyOf", [])
                arrays = [b for b in branches if b.get("type") == "array"]
                if param["in"] == "query" and arrays and len(branches) == 2:
                    assert {"type": "null"} in branches, param
                    param["schema"] = arrays[0]  # a new object: YAML aliases stay intact
    path = tmp / "devin-v3-sessions.prism.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(mode: str, spec: Path, tmp: Path) -> Prism:
    """Start one Prism in the background (``wait_listening`` waits for it)."""
    port = _free_port()
    args = [str(PRISM_BIN), "mock", str(spec), "-h", "127.0.0.1", "-p", str(port), "--errors"]
    if mode == "seeded":
        args += ["-d", "--seed", SEED]
    elif mode == "random":
        args += ["-d"]
    log_path = tmp / f"prism-{mode}.log"
    env = {**os.environ, "SCARF_ANALYTICS": "false", "FORCE_COLOR": "0", "NO_COLOR": "1"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
        )
    # Its boot (a few CPU-seconds of Node) fills the gaps the test workers leave instead of
    # slowing their start-up; the contract tests come a few seconds into the run.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, process.pid, NICE)
    _CHILDREN.append(process)
    return Prism(mode, port, log_path, process.pid)


_CHILDREN: list[subprocess.Popen[bytes]] = []
_TEMPORARY: list[Path] = []


def stop_all() -> None:
    """Stop every Prism this process started."""
    for process in _CHILDREN:
        process.send_signal(signal.SIGTERM)
    for process in _CHILDREN:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    _CHILDREN.clear()
    for folder in _TEMPORARY:
        shutil.rmtree(folder, ignore_errors=True)
    _TEMPORARY.clear()


def start_all(tmp: Path | None = None) -> dict[str, Prism]:
    """Install if needed, then start one Prism per mode without waiting for them."""
    ensure_prism()
    if tmp is None:
        tmp = Path(tempfile.mkdtemp(prefix="devin-terminate-prism-"))
        _TEMPORARY.append(tmp)
    spec = prism_spec(tmp)
    return {mode: start(mode, spec, tmp) for mode in MODES}


def publish(servers: dict[str, Prism] | None, problem: str | None = None) -> None:
    """Hand the servers (or why there are none) to this process's and the workers' fixtures."""
    if servers is not None:
        found = {
            m: {"port": p.port, "log": str(p.log_path), "pid": p.pid} for m, p in servers.items()
        }
        os.environ[PRISM_ENV] = json.dumps({"servers": found})
    else:
        os.environ[PRISM_ENV] = json.dumps({"problem": problem})


def published() -> tuple[dict[str, Prism] | None, str | None]:
    """(servers, problem) as ``publish`` left them; (None, None) when nothing was published."""
    text = os.environ.get(PRISM_ENV)
    if not text:
        return None, None
    data = json.loads(text)
    if "servers" not in data:
        return None, str(data["problem"])
    servers = {
        mode: Prism(mode, int(v["port"]), Path(v["log"]), int(v["pid"]))
        for mode, v in data["servers"].items()
    }
    return servers, None


def selected(args: list[str], invocation_dir: Path) -> bool:
    """True when the contract tests are among the paths pytest was asked to run."""
    for arg in args:
        path = Path(arg.split("::", 1)[0])
        path = (path if path.is_absolute() else invocation_dir / path).resolve()
        if path == CONTRACT_TESTS or path in CONTRACT_TESTS.parents:
            return True
    return False


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")
