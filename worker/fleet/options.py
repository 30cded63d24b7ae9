"""The flags of the fleet commands (`enqueue`, `work`, `report --redis`), and their values.

Imported when the parser is built: nothing heavy at module level."""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass

from worker._names import PASSWORD_ENV

URL_ENV = "DEVIN_TERMINATE_REDIS_URL"
DEFAULT_STREAM = "devin-terminate:ids"
DEFAULT_GROUP = "devin-terminate"


def add_connection_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help=f"redis://HOST:PORT/DB or rediss:// for TLS [env {URL_ENV}]"
        + (" (required)" if required else ""),
    )
    parser.add_argument(
        "--redis-password-file",
        metavar="PATH",
        help=f"read the Redis password from this file [else env {PASSWORD_ENV}]",
    )
    parser.add_argument(
        "--stream",
        default=DEFAULT_STREAM,
        help=f"the queue's stream key (default {DEFAULT_STREAM})",
    )


def add_work_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument(
        "--group", default=DEFAULT_GROUP, help="consumer group (default %(default)s)"
    )
    parser.add_argument(
        "--consumer",
        help="this worker's name in the group, stable across restarts (default HOST-PID); "
        "a restarted worker with the same name finishes its own pending entries first",
    )
    parser.add_argument(
        "--until-empty", action="store_true", help="stop once the queue is drained (for cron)"
    )
    parser.add_argument(
        "--org-rate",
        type=float,
        metavar="R",
        help="requests per second for the whole fleet on this org (default: --rate); "
        "given alone, it paces each worker (no --rate under it)",
    )
    parser.add_argument(
        "--claim-idle",
        type=float,
        default=60.0,
        metavar="S",
        help="claim entries another consumer left pending this long (default 60)",
    )
    parser.add_argument(
        "--metrics-port",
        metavar="[HOST:]PORT",
        help="serve /metrics (Prometheus), /healthz and /readyz on this port "
        "(all interfaces unless HOST is given; default: off)",
    )
    parser.add_argument(
        "--redis-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="give up (exit 3) when Redis stays unreachable this long (default 60)",
    )


@dataclass(frozen=True, slots=True)
class FleetOptions:
    url: str
    password_file: str | None
    stream: str
    group: str = DEFAULT_GROUP
    consumer: str = ""
    until_empty: bool = False
    org_rate: float | None = None
    claim_idle: float = 60.0
    redis_timeout: float = 60.0
    metrics: tuple[str, int] | None = None  # (host, port) of --metrics-port; "" all hosts

    def log_fields(self) -> dict[str, str]:
        """Which queue, for a log line: the Redis URL with no password, and the stream."""
        from worker.fleet.connect import mask_url

        return {"redis": mask_url(self.url), "stream": self.stream}


def fleet_options(args: argparse.Namespace) -> FleetOptions:
    from worker.errors import ConfigError
    from worker.fleet.connect import check_url

    url = args.redis or os.environ.get(URL_ENV)
    if not url:
        raise ConfigError(f"no Redis: pass --redis redis://HOST:6379/0 or set {URL_ENV}")
    check_url(url)
    if not args.stream:
        raise ConfigError("--stream must not be empty")
    consumer = getattr(args, "consumer", None) or f"{socket.gethostname()}-{os.getpid()}"
    for name in ("claim_idle", "redis_timeout"):
        if getattr(args, name, 1.0) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be more than 0 seconds")
    return FleetOptions(
        url=url,
        password_file=args.redis_password_file,
        stream=args.stream,
        group=getattr(args, "group", DEFAULT_GROUP),
        consumer=consumer,
        until_empty=getattr(args, "until_empty", False),
        org_rate=getattr(args, "org_rate", None),
        claim_idle=getattr(args, "claim_idle", 60.0),
        redis_timeout=getattr(args, "redis_timeout", 60.0),
        metrics=_host_port(getattr(args, "metrics_port", None)),
    )


def _host_port(text: str | None) -> tuple[str, int] | None:
    """``--metrics-port``: ``PORT``, ``HOST:PORT`` or ``[V6]:PORT``; None when not given."""
    from worker.errors import ConfigError

    if text is None:
        return None
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not port.isdecimal() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--metrics-port {text!r}: give a port (9464) or HOST:PORT")
    return host, int(port)
