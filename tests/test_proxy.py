"""Through an egress proxy to an API whose TLS certificate comes from a private CA, as
operators' networks have them: a CONNECT proxy on loopback (asyncio) in front of the
simulator served over HTTPS, with a CA made by the ``openssl`` command for the test."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import cli_env, run_cli, session_results
from servers import ORG, TOKEN, serve, simulator_app

from worker.devin.network import check_network, resolve_proxy, tls_context
from worker.errors import ConfigError
from worker.simulator.population import terminable_ids

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A private CA and a certificate it signed for 127.0.0.1 (EC keys: fast to make)."""
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=devin-terminate test CA",
        cwd=d,
    )
    _openssl("req", *ec, "-keyout", "api.key", "-out", "api.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "api.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "api.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
        cwd=d,
    )
    return Pki(d / "ca.pem", d / "api.pem", d / "api.key")


@dataclass
class Proxy:
    """A CONNECT proxy: ``answer`` None opens the tunnel, else it is the status line sent."""

    answer: bytes | None = None
    url: str = ""
    heads: list[bytes] = field(default_factory=list)
    through: bytearray = field(default_factory=bytearray)
    open: set[asyncio.StreamWriter] = field(default_factory=set)  # connections not yet ended

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.add(writer)
        with contextlib.closing(writer):
            try:
                await self._serve(reader, writer)
            finally:
                self.open.discard(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        method, target, _ = head.split(b" ", 2)
        if self.answer is not None or method != b"CONNECT":
            writer.write((self.answer or b"405 Method Not Allowed") + b"\r\n")
            writer.write(b"Proxy-Authenticate: Basic realm=x\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        host, port = target.decode().rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.open.add(up_writer)
        with contextlib.closing(up_writer):
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                self.open.discard(up_writer)

    async def aclose(self) -> None:
        """End every connection a client left open (a kept-alive tunnel), and wait for their
        handlers: none is left pending when the loop closes, to be collected during another
        test (an unraisable exception there, which ``filterwarnings = error`` fails)."""
        for writer in list(self.open):
            writer.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if handlers:
            await asyncio.wait(handlers, timeout=5)
        await asyncio.sleep(0)  # the transports closed last are let go (connection_lost)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                self.through += data
                writer.write(data)
                await writer.drain()
            writer.write_eof()


@contextlib.contextmanager
def running(proxy: Proxy) -> Iterator[Proxy]:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(proxy.handle, "127.0.0.1", 0))
    proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(server.close)
        asyncio.run_coroutine_threadsafe(proxy.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(server.wait_closed())
        loop.close()


@contextlib.contextmanager
def https_api(pki: Pki, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert, pki.key)
    app = simulator_app(sessions=12)
    with serve(app, ssl_context=context) as served:
        ids = tmp_path / "ids.txt"
        ids.write_text("".join(f"{sid}\n" for sid in terminable_ids(served.sim.sessions)))
        yield served.base_url, ids


def _env(base_url: str, **extra: str) -> dict[str, str]:
    env = cli_env(DEVIN_API_KEY=TOKEN, DEVIN_ORG_ID=ORG, DEVIN_API_URL=base_url)
    for key in ("NO_PROXY", "no_proxy", "SSL_CERT_FILE", "http_proxy", "https_proxy"):
        env.pop(key, None)
    return {**env, **extra}


@pytest.mark.parametrize("trust", ["SSL_CERT_FILE", "--ca-bundle"])
def test_through_a_connect_proxy_to_a_private_ca(pki: Pki, tmp_path: Path, trust: str) -> None:
    with running(Proxy()) as proxy, https_api(pki, tmp_path) as (base_url, ids):
        extra = {"SSL_CERT_FILE": str(pki.ca)} if trust == "SSL_CERT_FILE" else {}
        flags = ["--ca-bundle", str(pki.ca)] if trust == "--ca-bundle" else []
        env = _env(base_url, HTTPS_PROXY=proxy.url, **extra)
        results = tmp_path / "r.jsonl"
        proc = run_cli(
            ["run", str(ids), "--results", str(results), "-y", *flags], env, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        assert {r["outcome"] for r in session_results(results)} == {"terminated"}
        listed = run_cli(["list", "--format", "ids", *flags], env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
    target = base_url.removeprefix("https://").encode()
    assert proxy.heads and all(h.startswith(b"CONNECT " + target + b" ") for h in proxy.heads)
    assert TOKEN.encode() not in b"".join(proxy.heads) + bytes(proxy.through)
    assert len(proxy.through) > 1000  # every request went through its tunnels


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 407 Proxy Authentication Required"]
)
def test_a_proxy_that_refuses_is_one_line_naming_it(tmp_path: Path, answer: bytes) -> None:
    with running(Proxy(answer=answer)) as proxy:
        env = _env("https://api.devin.example", HTTPS_PROXY=proxy.url)
        proc = run_cli(["list"], env, cwd=tmp_path)
    assert proc.returncode == 3
    assert len(proc.stderr.splitlines()) == 1
    assert f"proxy {proxy.url} refused the tunnel: {answer.split(b' ', 1)[1][:3].decode()}" in (
        proc.stderr
    )
    assert TOKEN not in proc.stderr and TOKEN.encode() not in b"".join(proxy.heads)


@pytest.mark.parametrize("bundle", ["missing", "directory", "not-pem"])
@pytest.mark.parametrize("origin", ["--ca-bundle", "SSL_CERT_FILE"])
def test_a_bad_ca_bundle_is_one_line_exit_2(tmp_path: Path, bundle: str, origin: str) -> None:
    path = tmp_path / bundle
    if bundle == "directory":
        path.mkdir()
    elif bundle == "not-pem":
        path.write_text("this is not a certificate\n")
    env = _env("https://api.devin.example", **({origin: str(path)} if origin[0] != "-" else {}))
    flags = [origin, str(path)] if origin[0] == "-" else []
    proc = run_cli(["list", *flags], env, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and origin in proc.stderr and str(path) in proc.stderr


def test_the_proxy_is_resolved_as_curl_does(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("NO_PROXY", "no_proxy", "https_proxy", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.corp:3128")
    assert resolve_proxy("https://api.devin.ai", None) == "http://user:pw@proxy.corp:3128"
    assert resolve_proxy("http://127.0.0.1:8080", None) is None  # plain http: never proxied
    assert resolve_proxy("https://api.devin.ai", "http://other:8080") == "http://other:8080"
    monkeypatch.setenv("NO_PROXY", ".devin.ai")
    assert resolve_proxy("https://api.devin.ai", None) is None


def test_plain_http_reads_no_ca_bundle(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    environ = {"SSL_CERT_FILE": missing}
    assert tls_context("http://127.0.0.1:8080", missing, environ) is True  # no TLS to set up
    check_network("http://127.0.0.1:8080", None, missing)
    with pytest.raises(ConfigError, match="does not exist"):
        tls_context("https://api.devin.ai", None, environ)
