"""The systemd template of a fleet worker: real flags, sandboxed, the token as a credential."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from worker.cli import build_parser

UNIT = Path(__file__).resolve().parent.parent / "config" / "devin-terminate-worker@.service"


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


def test_worker_unit_uses_only_existing_flags() -> None:
    text = UNIT.read_text().replace("\\\n", " ")
    command = re.search(r"devin-terminate work (.*?)'", text)
    assert command is not None
    flags = re.findall(r"(?<![\w-])--[a-z][a-z-]+", command.group(1))
    helps = _help("work")
    missing = [f for f in flags if not re.search(rf"(?<![\w-]){f}(?![\w-])", helps)]
    assert flags and not missing


def test_worker_unit_is_sandboxed_and_keeps_secrets_out_of_the_environment() -> None:
    text = UNIT.read_text()
    for line in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes"):
        assert line in text
    assert "${CREDENTIALS_DIRECTORY}/devin-api-key" in text
    assert "DEVIN_API_KEY" not in text and "REDIS_PASSWORD=" not in text
    assert "%H-%i" in text  # a consumer name stable across restarts


def test_enqueue_and_report_take_the_same_redis_flags() -> None:
    for command in ("enqueue", "work", "report"):
        assert "--redis URL" in _help(command) and "--stream" in _help(command)
