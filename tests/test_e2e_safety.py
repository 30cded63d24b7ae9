"""Safe by default: bad input never lost or sent, preflight limits, dry run, no token leaks."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN, cli_env, read_results, run_cli, session_results
from corpus import build_mixed_file, malformed_corpus

PREFIX = "/v3/organizations/org-test/sessions"


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_malformed_corpus_every_line_accounted_for(
    simulator: Any, tmp_path: Path, suffix: str
) -> None:
    sim = simulator("--sessions", "20")
    source = tmp_path / f"mixed{suffix}"
    expected = build_mixed_file(source)
    assert len(malformed_corpus()) >= 30
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        ["run", str(source), "--results", str(out), "--rate", "0"], cli_env(sim), cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # finished, some lines invalid
    by_line = {int(r["source"].rsplit(":", 1)[1]): r for r in session_results(out)}
    assert set(by_line) == set(expected)
    for line, sid in expected.items():
        record = by_line[line]
        if sid is None:
            assert record["outcome"] == "invalid" and record["error"], record
        else:
            assert (record["session_id"], record["outcome"]) == (sid, "not_found")
    stats = sim.stats()
    assert stats["unexpected_total"] == 0
    sent = {k.split("/")[-1] for k in stats["deletes_by_session"]}
    assert sent == {sid for sid in expected.values() if sid}


def test_ids_crafted_to_leave_the_sessions_path_are_never_sent(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "5")
    crafted = [
        "devin-../../self",
        "devin-..%2F..%2Fself",
        "devin-a/../../x",
        "devin-a?archive=false",
        "devin-a#x",
        "devin-%2e%2e",
        "../v3/self",
        "devin-a%00",
        "devin-a\\..\\x",
        "devin-a b",
        "http://evil.example/devin-a",
        "devin-\u2215etc",
    ]
    source = tmp_path / "crafted.txt"
    source.write_text("\n".join(crafted) + "\n", encoding="utf-8")
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        ["run", str(source), "--results", str(out), "--rate", "0"], cli_env(sim), cwd=tmp_path
    )
    assert proc.returncode == 1
    assert Counter(r["outcome"] for r in session_results(out)) == {"invalid": len(crafted)}
    stats = sim.stats()
    # the identity check (GET /v3/self) is the only request
    assert stats["requests_by_method"] == {"GET": 1} and stats["unexpected_total"] == 0


def test_over_max_sessions_exits_2_and_sends_nothing(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "40")
    out = tmp_path / "r.jsonl"
    proc = run_cli(
        ["run", str(sim.ids_path), "--results", str(out), "--max-sessions", "10"],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "--max-sessions" in proc.stderr
    assert sim.stats()["requests_total"] == 0
    assert not out.exists()


def test_dry_run_sends_no_delete_and_its_log_feeds_the_real_run(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "80")
    preview = tmp_path / "preview.jsonl"
    proc = run_cli(
        ["run", str(sim.ids_path), "--dry-run", "--results", str(preview), "--rate", "0"],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = sim.stats()
    assert stats["requests_by_method"].get("DELETE", 0) == 0
    assert stats["requests_by_method"]["GET"] == len(sim.ids()) + 1  # + GET /v3/self
    results = session_results(preview)
    assert Counter(r["outcome"] for r in results) == {"would_terminate": len(sim.ids())}
    assert all(r["status"] not in (None, "exit", "error") for r in results)
    # the summary says what a dry run cannot know
    assert "dry_run.unchecked" in proc.stderr and "no permission check" in proc.stderr
    real = tmp_path / "real.jsonl"
    proc = run_cli(
        ["run", str(preview), "--archive", "--results", str(real), "--rate", "0"],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Counter(r["outcome"] for r in session_results(real)) == {"archived": len(sim.ids())}


def test_dry_run_with_a_bad_token_exits_3_before_any_lookup(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "20")
    proc = run_cli(
        ["run", str(sim.ids_path), "--dry-run", "--results", str(tmp_path / "r.jsonl")],
        cli_env(sim, DEVIN_API_KEY="cog_bad"),
        cwd=tmp_path,
    )
    assert proc.returncode == 3
    assert sim.stats()["requests_total"] == 1  # GET /v3/self only
    assert read_results(tmp_path / "r.jsonl") == []  # stopped before run.started


def test_plain_http_to_a_remote_host_is_refused_before_connecting(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("devin-abc\n")
    env = cli_env(
        None,
        DEVIN_API_KEY=TOKEN,
        DEVIN_ORG_ID="org-test",
        DEVIN_API_URL="http://devin.example.invalid",
    )
    proc = run_cli(["run", str(ids), "--results", str(tmp_path / "r.jsonl")], env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "refusing plain http" in proc.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_missing_token_and_unreadable_input_exit_2_with_a_teaching_message(tmp_path: Path) -> None:
    env = cli_env(None, DEVIN_ORG_ID="org-test", DEVIN_API_URL="http://127.0.0.1:9")
    proc = run_cli(["run", "nope.csv"], env, cwd=tmp_path)
    assert proc.returncode == 2 and "DEVIN_API_KEY" in proc.stderr
    proc = run_cli(["run", "nope.csv"], {**env, "DEVIN_API_KEY": TOKEN}, cwd=tmp_path)
    assert proc.returncode == 2 and "nope.csv" in proc.stderr


def _everything_written(tmp_path: Path, procs: list[Any]) -> str:
    texts = [p.stdout + p.stderr for p in procs]
    files = [f for f in tmp_path.rglob("*") if f.is_file() and f.name != "token"]
    texts += [f.read_text(errors="replace") for f in files]
    return "\n".join(texts)


def test_the_token_never_appears_in_any_output_or_file(simulator: Any, tmp_path: Path) -> None:
    secret = "cog_SUPERSECRET_3141592653"
    sim = simulator(
        "--sessions",
        "30",
        "--token",
        secret,
        "--fault-rate",
        "0.5",
        "--timeout-hang-s",
        "2",
        "--fault-kinds",
        "500,502,503,504,reset,timeout,malformed",
    )
    procs = []
    env = cli_env(sim, DEVIN_API_KEY=secret, DEVIN_TERMINATE_LOG_LEVEL="debug")
    procs.append(
        run_cli(
            [
                "run",
                str(sim.ids_path),
                "--results",
                str(tmp_path / "a.jsonl"),
                "--rate",
                "0",
                "--timeout",
                "0.3",
                "--max-attempts",
                "2",
            ],
            env,
            cwd=tmp_path,
        )
    )
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    os.chmod(token_file, 0o644)
    env_file = {k: v for k, v in env.items() if k != "DEVIN_API_KEY"}
    procs.append(
        run_cli(
            [
                "run",
                str(sim.ids_path),
                "--token-file",
                str(token_file),
                "--no-resume",
                "--results",
                str(tmp_path / "b.jsonl"),
                "--rate",
                "0",
                "--timeout",
                "0.3",
                "--log-format",
                "console",
            ],
            env_file,
            cwd=tmp_path,
        )
    )
    assert "token_file.readable_by_others" in procs[-1].stderr
    procs.append(
        run_cli(
            [
                "run",
                str(sim.ids_path),
                "--results",
                str(tmp_path / "c.jsonl"),
                "--dry-run",
                "--timeout",
                "0.3",
            ],
            env,
            cwd=tmp_path,
        )
    )
    assert {p.returncode for p in procs} <= {0, 1}, [p.stderr[-500:] for p in procs]
    everything = _everything_written(tmp_path, procs)
    assert "session.retry" in everything  # the failures really happened
    assert secret not in everything and "SUPERSECRET" not in everything


def test_refused_tokens_are_not_echoed(simulator: Any, tmp_path: Path) -> None:
    procs = []
    for flags in ((), ("--lacks-manage-permission",)):
        sim = simulator("--sessions", "10", *flags)
        wrong = "cog_WRONGSECRET_271828" if not flags else sim.token
        env = cli_env(sim, DEVIN_API_KEY=wrong, DEVIN_TERMINATE_LOG_LEVEL="debug")
        procs.append(
            run_cli(
                ["run", str(sim.ids_path), "--results", str(tmp_path / f"{len(procs)}.jsonl")],
                env,
                cwd=tmp_path,
            )
        )
    assert [p.returncode for p in procs] == [3, 3]
    everything = _everything_written(tmp_path, procs)
    assert "WRONGSECRET" not in everything and TOKEN not in everything


def test_unknown_fields_and_enum_values_are_parsed_and_reported(
    simulator: Any, tmp_path: Path
) -> None:
    sim = simulator("--sessions", "100", "--unknown-enums", "--already-terminated", "200")
    out = tmp_path / "r.jsonl"
    ids = sim.ids()
    proc = run_cli(
        ["run", str(sim.ids_path), "--archive", "--results", str(out), "--rate", "0"],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Counter(r["outcome"] for r in session_results(out)) == {"archived": len(ids)}
    again = run_cli(
        [
            "run",
            str(sim.ids_path),
            "--archive",
            "--results",
            str(out),
            "--rate",
            "0",
            "--no-resume",
            "--dry-run",
        ],
        cli_env(sim),
        cwd=tmp_path,
    )
    assert again.returncode == 0
    assert {r["status"] for r in session_results(out)} == {"exit"}
    # a dry run tells the truth: every session is terminal already
    assert read_results(out)[-1]["counts"] == {"already_terminated": len(ids)}


def test_max_sessions_counts_stdin_too(simulator: Any, tmp_path: Path) -> None:
    sim = simulator("--sessions", "40")
    ids = sim.ids()
    text = "\n".join([*ids, ids[0]]) + "\n"
    over = run_cli(
        ["run", "-", "--results", str(tmp_path / "a.jsonl"), "--max-sessions", str(len(ids) - 1)],
        cli_env(sim),
        cwd=tmp_path,
        stdin=text,
    )
    assert over.returncode == 2 and "--max-sessions" in over.stderr
    assert sim.stats()["requests_total"] == 0
    out = tmp_path / "b.jsonl"
    ok = run_cli(
        ["run", "-", "--results", str(out), "--max-sessions", str(len(ids)), "--rate", "0"],
        cli_env(sim),
        cwd=tmp_path,
        stdin=text,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    results = session_results(out)
    assert sorted(r["session_id"] for r in results) == sorted(ids)
    assert results[0]["source"].startswith("-:")
    assert read_results(out)[-1]["counts"]["duplicate"] == 1
