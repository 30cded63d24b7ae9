"""The ``simulate`` command: flags for every SimulatorConfig field, then serve.

aiohttp is imported inside ``main()`` only, so building the parser (and ``--help``)
stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .config import (
    ALREADY_TERMINATED_MODES,
    LIMIT_KINDS,
    MIX_FAULT_KINDS,
    PROBLEM_CONTENT_TYPES,
    RETRY_AFTER_MODES,
    SimulatorConfig,
)

_DEFAULTS = SimulatorConfig()


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags to ``parser`` (defaults are SimulatorConfig's)."""
    _add_population_flags(parser)
    _add_limit_flags(parser)
    _add_fault_flags(parser)
    _add_answer_flags(parser)
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no start-up line on stderr (give a --port, or --write-ids, to know where it is)",
    )


def main(args: argparse.Namespace) -> int:
    """Serve the simulator as ``args`` say; 0 on a clean stop, 2 on a bad setting."""
    try:
        config = config_from_args(args)
        from .server import serve

        serve(config, args.host, args.port, args.write_ids, quiet=args.quiet)
    except ValueError as error:
        print(f"devin-terminate simulate: {error}", file=sys.stderr)
        return 2
    return 0


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the parsed flags describe (ValueError if inconsistent)."""
    names = [name for name in SimulatorConfig.__dataclass_fields__ if hasattr(args, name)]
    values: dict[str, Any] = {name: getattr(args, name) for name in names}
    values["fault_kinds"] = tuple(args.fault_kinds)
    values["faults_by_id"] = dict(args.fault_script or [])
    values["fault_mix"] = dict(args.fault or [])
    values["limit_schedule"] = args.limit_schedule or ()
    return SimulatorConfig(**values)


def _add_population_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("population and identity")
    group.add_argument("--host", default="127.0.0.1", help="loopback address (default %(default)s)")
    group.add_argument(
        "--port", type=int, default=8080, help="port, 0 = any free (default %(default)s)"
    )
    _field(
        group,
        "--sessions",
        int,
        "sessions that can be terminated (already-terminated ones come on top)",
    )
    _field(group, "--seed", int, "population and fault seed")
    _field(group, "--token", help="the bearer token to accept")
    _field(group, "--org-id", help="the organisation id")
    group.add_argument(
        "--write-ids", metavar="PATH", help="write the terminable ids to PATH as CSV"
    )
    for flag in ("--exit-ratio", "--error-ratio", "--archived-ratio"):
        _field(group, flag, float)


def _add_limit_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rate limit and latency")
    group.add_argument("--rate-limit", type=float, help="requests/s for the token (default: none)")
    group.add_argument("--rate-burst", type=int, help="bucket size (default: rate-limit / 10)")
    _field(
        group,
        "--limit-kind",
        help="how the limit counts: a token bucket, a fixed one-second window or a sliding "
        "one-second log (default %(default)s)",
        choices=LIMIT_KINDS,
    )
    _field(
        group,
        "--retry-after",
        help="how 429s carry Retry-After (default %(default)s)",
        choices=RETRY_AFTER_MODES,
    )
    group.add_argument(
        "--limit-schedule",
        type=_schedule,
        metavar="T:LIMIT,...",
        help="limits that change during the run, e.g. 0:300,10:150,20:300 "
        "(T = seconds since the first API request; replaces --rate-limit)",
    )
    for flag in ("--latency-ms", "--latency-jitter-ms"):
        _field(group, flag, float)
    group.add_argument(
        "--slow-429s",
        action="store_true",
        help="429s take the latency too (default: answered at once, as a gateway does)",
    )


def _add_fault_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("faults")
    _field(group, "--fault-rate", float, "probability of a random fault per request")
    _field(group, "--fault-kinds", _kinds, "comma-separated: " + ",".join(_DEFAULTS.fault_kinds))
    group.add_argument(
        "--fault-script",
        type=_script,
        action="append",
        metavar="ID=KIND,KIND",
        help="faults for successive requests naming ID (repeatable)",
    )
    group.add_argument(
        "--fault",
        type=_mix_entry,
        action="append",
        metavar="KIND=P",
        help="a fault kind with its own probability per request (repeatable): "
        + ",".join(MIX_FAULT_KINDS),
    )
    wait = "seconds in the Retry-After of 503-retry-after/-date faults (default %(default)s)"
    _field(group, "--fault-retry-after", float, wait)
    _field(group, "--timeout-hang-s", float)
    _field(
        group, "--ghost-success-rate", float, "chance a reset/timed-out DELETE was applied anyway"
    )
    _field(
        group,
        "--forbidden-share",
        float,
        "share of sessions whose DELETE and archive answer 403 naming a permission",
    )
    _field(
        group,
        "--archive-fail-share",
        float,
        "share of sessions that cannot be archived (archive 500; DELETE archive=true only "
        "terminates)",
    )
    group.add_argument(
        "--archive-fail-times",
        type=int,
        metavar="N",
        help="the archive of those sessions fails N times, then works (default: always)",
    )


def _field(
    group: argparse._ArgumentGroup,
    flag: str,
    kind: Callable[[str], Any] = str,
    help: str | None = None,
    **extra: Any,
) -> None:
    """A flag for the SimulatorConfig field of the same name, with the field's default."""
    default = getattr(_DEFAULTS, flag[2:].replace("-", "_"))
    group.add_argument(flag, type=kind, default=default, help=help, **extra)


_SWITCHES = {
    "--unknown-enums": "answer enum values and fields the spec does not know",
    "--hostile-titles": "titles and tags holding newlines, separators, quotes, other ids, "
    "cog_ strings",
    "--lacks-manage-permission": "DELETE and archive answer 403 (no ManageOrgSessions)",
    "--legacy-422": "422s use the older HTTPValidationError body",
    "--cycling-cursors": "list pages whose cursors cycle (the third page is the first again)",
    "--endless-empty-pages": "after the last list page, empty pages that say there is a next",
}
_MODES = {
    "--already-terminated": ALREADY_TERMINATED_MODES,
    "--problem-content-type": PROBLEM_CONTENT_TYPES,
}


def _add_answer_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("answers")
    for flag, text in _SWITCHES.items():
        group.add_argument(flag, action="store_true", help=text)
    for flag, modes in _MODES.items():
        _field(group, flag, choices=modes)


def _kinds(text: str) -> tuple[str, ...]:
    return tuple(kind.strip() for kind in text.split(",") if kind.strip())


def _mix_entry(text: str) -> tuple[str, float]:
    kind, sep, share = text.partition("=")
    try:
        return kind.strip(), float(share) if sep else float("nan")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KIND=PROBABILITY, got {text!r}") from None


def _schedule(text: str) -> tuple[tuple[float, float], ...]:
    entries = []
    for part in text.split(","):
        at, sep, limit = part.partition(":")
        try:
            entries.append((float(at), float(limit)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected T:LIMIT,T:LIMIT (seconds:requests per second), got {text!r}"
            ) from None
        if not sep:
            raise argparse.ArgumentTypeError(f"expected T:LIMIT, got {part!r}")
    return tuple(entries)


def _script(text: str) -> tuple[str, tuple[str, ...]]:
    devin_id, sep, kinds = text.partition("=")
    if not sep or not devin_id.strip():
        raise argparse.ArgumentTypeError(f"expected ID=KIND,KIND, got {text!r}")
    return devin_id.strip(), _kinds(kinds)
