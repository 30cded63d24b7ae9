"""The base URL of the API: one name for one API (``HTTPS://API.devin.ai:443/`` is
``https://api.devin.ai``), and https anywhere, plain http only to a loopback host."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from worker.errors import ConfigError

__all__ = ["check_base_url", "normalized_base_url"]


def normalized_base_url(url: str) -> str:
    """``url`` as one API has one name: scheme and host in lower case, no default port, no
    trailing slash (``HTTPS://API.devin.ai:443/`` is ``https://api.devin.ai``)."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return url  # check_base_url says what is wrong
    if not parts.hostname:
        return url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme = parts.scheme.lower()
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host += f":{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, parts.fragment))


def check_base_url(url: str) -> None:
    """https anywhere; plain http only to a loopback host (the simulator, a local proxy)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base URL {url!r} is not an http(s) URL, e.g. https://api.devin.ai")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing plain http to {parts.hostname}: the token would travel unencrypted. "
            "Use https, or http only for a loopback host such as 127.0.0.1."
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
