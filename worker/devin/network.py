"""Where requests go and whom they trust, decided once per run; how a query is written.

The proxy: ``--proxy URL`` (also ``proxy`` in TOML, ``DEVIN_TERMINATE_PROXY``), else the
``HTTPS_PROXY``/``https_proxy`` of the environment unless ``NO_PROXY`` names the API's
host (``urllib.request.getproxies`` and ``proxy_bypass``, as curl and Python read them).
It is resolved here once and handed to every request, rather than aiohttp's
``trust_env``, which looks the host up in ``~/.netrc`` on every request and fails on a
match next to our ``Authorization`` header. HTTPS goes through the proxy as a ``CONNECT``
tunnel, so the token reaches only the API. Plain ``http://`` is only ever sent to a
loopback host (`worker._base_url.check_base_url`) and never through a proxy, where the
token would travel in clear.

Trust: ``--ca-bundle PATH``, else ``SSL_CERT_FILE``, else the system's CAs; a file that
is missing, a directory or not PEM is a `ConfigError` (exit 2) naming it, at start-up.
"""

from __future__ import annotations

import functools
import os
import ssl
import urllib.request
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from worker.errors import ConfigError

QueryValue = str | int | bool | Sequence[str]

__all__ = [
    "QueryValue",
    "check_network",
    "proxy_failure",
    "query_pairs",
    "resolve_proxy",
    "shown_proxy",
    "tls_context",
]


def check_network(base_url: str, proxy: str | None, ca_bundle: str | None) -> None:
    """ConfigError (exit 2) now, at start-up, for a proxy URL or CA bundle that cannot work."""
    resolve_proxy(base_url, proxy)
    tls_context(base_url, ca_bundle)


def resolve_proxy(base_url: str, flag: str | None) -> str | None:
    """The proxy every request to ``base_url`` goes through, or None (direct)."""
    parts = urlsplit(base_url)
    if parts.scheme != "https":
        return None
    if flag:
        return _checked(flag, "--proxy")
    url = urllib.request.getproxies().get("https")
    if not url or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return _checked(url, "HTTPS_PROXY")


def _checked(url: str, origin: str) -> str:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"the proxy {shown_proxy(url)!r} (from {origin}) is not an http(s) URL; "
            "e.g. http://proxy.example:3128"
        )
    return parts.geturl()


def proxy_failure(proxy: str | None, status: int | None, detail: str) -> str:
    """The failure of a request the proxy did not carry: unreachable, or it refused."""
    shown = shown_proxy(proxy or "")
    if status is None:
        return f"proxy {shown} unreachable: {detail}"
    hint = " (it wants credentials: put user:password@ in the proxy URL)" if status == 407 else ""
    return f"proxy {shown} refused the tunnel: {status} {detail}{hint}"


def shown_proxy(url: str) -> str:
    """A proxy URL as it may be printed: without its user and password."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def tls_context(
    base_url: str, ca_bundle: str | None, environ: Mapping[str, str] | None = None
) -> ssl.SSLContext | bool:
    """The TLS context of every request: verified always, against ``ca_bundle``, else
    ``SSL_CERT_FILE``, else the system's CAs (``True``: aiohttp's default). Plain http (a
    loopback host only, `worker._base_url.check_base_url`) has no TLS: no bundle is read
    (loading one costs some 20 ms of every start)."""
    environ = os.environ if environ is None else environ
    if urlsplit(base_url).scheme != "https":
        return True
    if ca_bundle:
        return _context(ca_bundle, "--ca-bundle")
    if environ.get("SSL_CERT_FILE"):
        return _context(environ["SSL_CERT_FILE"], "SSL_CERT_FILE")
    return True


@functools.lru_cache(maxsize=4)
def _context(cafile: str, origin: str) -> ssl.SSLContext:
    name = f"the CA bundle {cafile} (from {origin})"
    try:
        return ssl.create_default_context(cafile=cafile)
    except IsADirectoryError:
        raise ConfigError(
            f"{name} is a directory; give a PEM file of CA certificates "
            "(a directory of hashed certificates goes in SSL_CERT_DIR)"
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"{name} does not exist; give a PEM file of CA certificates") from None
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{name} is not a PEM file of CA certificates ({exc.reason or exc}); "
            "convert it with: openssl x509 -inform der -in CA.cer -out ca.pem"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None


def query_pairs(query: Mapping[str, QueryValue]) -> list[tuple[str, str]]:
    """Query pairs; lists become repeated keys (``tags=a&tags=b``), booleans ``true``/``false``."""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((key, str(item)) for item in value)
    return pairs
