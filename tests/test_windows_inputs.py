"""What Windows machines hand over: spreadsheets saved as Windows-1252 or UTF-16, rows of
empty cells, tokens with a trailing CR, and files that are not text at all."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_env, run_cli, session_results

from worker.errors import InputError
from worker.input.sources import read_inputs


def _spreadsheets(tmp_path: Path, ids: list[str]) -> list[str]:
    third = len(ids) // 3
    cp1252 = tmp_path / "owners-1252.csv"  # "Müller" and "Straße" in other columns
    rows = "".join(f"Müller;{sid};Straße {n}\r\n" for n, sid in enumerate(ids[:third]))
    cp1252.write_bytes(("Owner;Session ID;Note\r\n" + rows + ";;\r\n;;\r\n").encode("cp1252"))
    utf16 = tmp_path / "owners-utf16.csv"  # Excel's "Unicode text": a BOM, then UTF-16 LE
    rows = "".join(f"Zoë\t{sid}\r\n" for sid in ids[third : 2 * third])
    utf16.write_bytes(("owner\tsession_id\r\n" + rows).encode("utf-16"))
    trailing = tmp_path / "trailing.csv"  # a sheet whose last rows are empty cells
    rows = "".join(f"{sid};ok\n" for sid in ids[2 * third :])
    trailing.write_text("session_id;state\n" + rows + ";\n;;\n ; \n")
    return [str(cp1252), str(utf16), str(trailing)]


def test_spreadsheets_from_windows_terminate_every_session(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "30")
    results = tmp_path / "r.jsonl"
    inputs = _spreadsheets(tmp_path, sim.ids())
    proc = run_cli(["run", *inputs, "--results", str(results), "--yes"], cli_env(sim), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = session_results(results)
    assert {r["session_id"] for r in records} == set(sim.ids())
    assert {r["outcome"] for r in records} == {"terminated"}


def test_a_token_with_a_trailing_crlf_works(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "3")
    env = cli_env(sim, DEVIN_API_KEY=sim.token + "\r\n")
    proc = run_cli(
        ["run", str(sim.ids_path), "--results", str(tmp_path / "r.jsonl")], env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr


def test_a_token_with_a_control_character_is_one_line(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "3")
    env = cli_env(sim, DEVIN_API_KEY=sim.token[:6] + "\x08" + sim.token[6:])
    proc = run_cli(
        ["run", str(sim.ids_path), "--results", str(tmp_path / "r.jsonl")], env, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "DEVIN_API_KEY" in proc.stderr
    assert sim.token[6:] not in proc.stderr


@pytest.mark.parametrize("source", ["random", "/dev/zero"])
def test_binary_input_is_refused_before_anything_is_sent(
    simulator: Any, tmp_path: Path, source: str
) -> None:
    sim = simulator("--sessions", "3")
    if source == "random":
        source = str(tmp_path / "random.bin")
        Path(source).write_bytes(os.urandom(1 << 20))
    proc = run_cli(
        ["run", source, "--results", str(tmp_path / "r.jsonl"), "-y"], cli_env(sim), cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "is not text" in proc.stderr and "Traceback" not in proc.stderr
    assert sim.stats()["deletes_total"] == 0


def test_encoding_reads_text_without_a_bom() -> None:
    data = "devin-a\r\ndevin-b\r\n".encode("utf-16-le")
    items = list(read_inputs(["-"], stdin=io.BytesIO(data), encoding="utf-16-le"))
    assert [item.session_id for item in items] == ["devin-a", "devin-b"]
    with pytest.raises(InputError, match="--encoding utf-16-le"):
        list(read_inputs(["-"], stdin=io.BytesIO(data)))
