"""The shipped examples stay true: the TOML holds exactly the real settings at their
defaults, the cron and systemd files call flags that exist, and --help stays import-light."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import tomllib

import pytest
from conftest import REPO, cli_env, run_cli

from worker.settings import Settings, load_settings

CONFIG = REPO / "config"
SETTINGS = set(Settings.NAMES)
_ASSIGNED = re.compile(r"^#?\s*([a-z_]+)\s*=", re.MULTILINE)
_COMMAND = re.compile(
    r"(?:devin-terminate|\"\$\$?dt\")\s+(run|list|compact)\b(.*?)(?=&&|\||'|;|$)", re.DOTALL
)
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def test_example_toml_keys_are_real_settings() -> None:
    data = tomllib.loads((CONFIG / "example.toml").read_text())
    assert set(data) <= SETTINGS, f"not settings: {set(data) - SETTINGS}"


def test_example_toml_documents_every_setting() -> None:
    text = (CONFIG / "example.toml").read_text()
    documented = set(_ASSIGNED.findall(text))
    assert documented == SETTINGS, (
        f"undocumented: {SETTINGS - documented}; unknown: {documented - SETTINGS}"
    )


def test_example_toml_loads_with_the_defaults() -> None:
    loaded = load_settings({}, config=str(CONFIG / "example.toml"), environ={})
    assert loaded == Settings()  # the values (not where from)


def _commands(text: str) -> list[tuple[str, list[str]]]:
    joined = text.replace("\\\n", " ")
    return [(sub, _FLAG.findall(args)) for sub, args in _COMMAND.findall(joined)]


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The --help text of each subcommand, as the installed CLI prints it."""
    cwd = tmp_path_factory.mktemp("help")
    texts = {}
    for sub in ("run", "list", "compact"):
        proc = run_cli([sub, "--help"], cli_env(), cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        texts[sub] = proc.stdout
    return texts


@pytest.mark.parametrize("name", ["devin-terminate.crontab", "devin-terminate.service"])
def test_examples_use_only_existing_flags(name: str, helps: dict[str, str]) -> None:
    commands = _commands((CONFIG / name).read_text())
    assert {sub for sub, _ in commands} == {"list", "run", "compact"}
    for sub, flags in commands:
        assert flags, f"{name}: no flags found for `{sub}`"
        missing = [f for f in flags if not re.search(rf"(?<![\w-]){f}(?![\w-])", helps[sub])]
        assert not missing, f"{name}: `devin-terminate {sub}` has no {missing}"


def test_timer_starts_the_service() -> None:
    text = (CONFIG / "devin-terminate.timer").read_text()
    assert "OnCalendar=" in text and "Persistent=true" in text
    assert (CONFIG / "devin-terminate.service").exists()


def test_systemd_service_is_sandboxed() -> None:
    text = (CONFIG / "devin-terminate.service").read_text()
    for line in (
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "StateDirectory=devin-terminate",
        "LoadCredential=",
    ):
        assert line in text
    assert "${CREDENTIALS_DIRECTORY}/devin-api-key" in text


@pytest.mark.subprocess
def test_parser_imports_nothing_heavy() -> None:
    """The deterministic guard for a quick --help: no aiohttp, pydantic or rich; and the
    logging set-up every command makes loads structlog without rich (about 0.1 s of each
    start), while rich stays importable for the progress bar."""
    code = (
        "import json, sys, worker.cli; worker.cli.build_parser(); "
        "heavy = ('aiohttp', 'pydantic', 'rich', 'structlog'); "
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules))); "
        "import worker.output.logs; print(json.dumps('rich' in sys.modules)); "
        "import rich.console; print(json.dumps('rich' in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [[], False, True]


@pytest.mark.subprocess
def test_a_run_reaches_its_first_request_without_pydantic() -> None:
    """The settings are checked without pydantic (70-100 ms of each start) and nothing a
    run imports before its first DELETE loads it (the API's models come after), nor the
    modules only a mistake needs."""
    code = (
        "import json, sys, worker.output.logs; "  # first, as the command line does
        "import worker.run.job, worker.commands.run, worker.output.progress; "
        "from worker.settings import load_settings; "
        "load_settings({'org_id': 'org-x', 'rate': '5', 'concurrency': 16}, environ={}); "
        "print(json.dumps(sorted(m for m in ('pydantic', 'html', 'difflib') if m in sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_the_console_script_sizes_the_collectors_young_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above a run's live objects (some 45 per request in flight), or the collector walks
    them over and over (7 ms per 1,000 sessions at 16 in flight); the older generations'
    thresholds are left as they are."""
    from worker.cli import GC_YOUNG, _warm_up

    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "__all__")
    before = gc.get_threshold()
    try:
        _warm_up(None)
        assert gc.get_threshold() == (GC_YOUNG, *before[1:]) and GC_YOUNG >= 45 * 16 * 4
    finally:
        gc.set_threshold(*before)


def test_a_command_builds_only_its_own_part_of_the_command_line() -> None:
    """``run`` imports no other command's module (start-up time); --help still lists all."""
    import argparse

    import worker.cli

    parser = worker.cli.build_parser("run")
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert [list(action.choices) for action in commands] == [["run"]]
    assert parser.parse_args(["run", "ids.csv"]).command == "run"
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate"])  # not built: an error, not a simulator
    assert "simulate" in worker.cli.build_parser().format_help()
