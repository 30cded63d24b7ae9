"""Durable intent: ``session.sending`` before the first DELETE; a rerun after a crash reports
a session our unrecorded DELETE terminated as terminated, not ``already_terminated``."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.conftest import read_results
from tests.servers import ORG, TOKEN, serve, settings, simulator_app
from worker.output.records import SessionSending
from worker.output.results import ResultLog, scan_results
from worker.run.job import run_job
from worker.simulator import terminable_ids


def _lines(path: Path, *records: dict[str, object]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _result(session_id: str, outcome: str, http_status: int | None = None) -> dict[str, object]:
    return {
        "event": "session.result",
        "session_id": session_id,
        "outcome": outcome,
        "http_status": http_status,
    }


def test_the_scan_knows_which_deletes_went_out_unanswered(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    sending = [{"event": "session.sending", "session_id": f"devin-{n}"} for n in "abcde"]
    _lines(
        path,
        {"event": "run.started", "org_id": ORG, "base_url": "https://x"},
        *sending,
        _result("devin-b", "terminated", 200),
        _result("devin-c", "cancelled"),
        _result("devin-d", "failed", 400),
        _result("devin-e", "failed", None),
    )
    prior = scan_results(path)
    assert {f"devin-{n}" for n in "abcde" if f"devin-{n}" in prior.sent} == {
        "devin-a",  # no answer recorded: a crash
        "devin-c",  # cancelled in flight: it may have worked
        "devin-e",  # timed out: it may have worked
    }
    assert "devin-b" in prior.settled and prior.owners == {(ORG, "https://x")}


def test_a_run_writes_one_intent_before_each_first_delete(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    ids = tmp_path / "ids.txt"
    with serve(simulator_app(fault_rate=0.3, fault_kinds=("500", "503"))) as api:
        terminable = terminable_ids(api.sim.sessions)
        ids.write_text("\n".join(terminable) + "\n")
        assert run_job(settings(api.base_url, out), [str(ids)]).exit_code == 0
        run_job(settings(api.base_url, tmp_path / "dry.jsonl", dry_run=True), [str(ids)])
    records = read_results(out)
    first_seen: dict[str, str] = {}
    for record in records:
        if record["event"] in ("session.sending", "session.result"):
            first_seen.setdefault(record["session_id"], record["event"])
    sending = [r for r in records if r["event"] == "session.sending"]
    assert len(sending) == len({r["session_id"] for r in sending}) == len(terminable)
    assert set(first_seen.values()) == {"session.sending"}
    SessionSending.model_validate(sending[0])
    assert not [r for r in read_results(tmp_path / "dry.jsonl") if "sending" in r["event"]]


def _delete(base_url: str, session_id: str) -> None:
    request = urllib.request.Request(
        f"{base_url}/v3/organizations/{ORG}/sessions/{session_id}",
        method="DELETE",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def test_a_rerun_after_a_crash_reports_our_delete_as_ours(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    with serve(simulator_app()) as api:
        ours, theirs = terminable_ids(api.sim.sessions)[:2]
        for session_id in (ours, theirs):  # our unrecorded DELETE, and someone else's
            _delete(api.base_url, session_id)
        crashed = ResultLog(out, "crashed")
        crashed.started(org_id=ORG, base_url=api.base_url)
        crashed.sending(ours)  # then kill -9: no answer recorded
        crashed.close()
        ids = tmp_path / "ids.txt"
        ids.write_text(f"{ours}\n{theirs}\n")
        assert run_job(settings(api.base_url, out), [str(ids)]).exit_code == 0
    outcomes = {r["session_id"]: r["outcome"] for r in read_results(out) if "outcome" in r}
    assert outcomes == {ours: "terminated", theirs: "already_terminated"}
