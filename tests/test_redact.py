"""Redaction: the live token and token-shaped strings leave through no sink; org ids stay."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from tests.servers import ORG, TOKEN, echo_app, echo_ids, serve, settings
from worker.outcomes import SessionResult
from worker.output import redact
from worker.output.logs import configure_logging
from worker.output.results import ResultLog
from worker.output.summary import print_summary
from worker.run.job import run_job


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {TOKEN}",
        f'{{"Authorization": "Bearer {TOKEN}"}}',
        f"authorization={TOKEN}",
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "bearer cog_someone_elses_token_123",
        'x-api-key: "abcdef123456"',
        f"headers={{'Authorization': '{TOKEN}'}}",
    ],
)
def test_token_shapes_are_masked(text: str) -> None:
    redact.add_secret(TOKEN)
    scrubbed = redact.scrub(text)
    assert TOKEN not in scrubbed and "cog_someone" not in scrubbed
    assert "dXNlcjpw" not in scrubbed and "abcdef123456" not in scrubbed
    assert redact.MASK in scrubbed
    assert redact.scrub(scrubbed) == scrubbed  # idempotent: no [REDACTED]] growth
    assert redact.scrub_bytes(text.encode()) == scrubbed.encode()


def test_org_ids_session_ids_and_prose_stay_visible() -> None:
    redact.add_secret(TOKEN)
    text = f"the token belongs to org {ORG}, not to --org-id org-other; devin-abc: HTTP 401"
    assert redact.scrub(text) == text
    assert redact.scrub("authorization failed for the bearer") == (
        "authorization failed for the bearer"
    )


def test_session_ids_holding_cog_are_never_mangled(tmp_path: Path) -> None:
    redact.add_secret(TOKEN)
    assert (
        redact.scrub("devin-cog_abc_123 and devin-x-cog_y") == "devin-cog_abc_123 and devin-x-cog_y"
    )
    log = ResultLog(tmp_path / "r.jsonl", "run")
    log.sending("devin-cog_abc_123")
    log.result(SessionResult("devin-cog_abc_123", "failed", error=f"HTTP 401: Bearer {TOKEN}"))
    log.close()
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert {r["session_id"] for r in records} == {"devin-cog_abc_123"}
    assert records[1]["error"] == "HTTP 401: Bearer [REDACTED]"


def test_a_non_cog_live_token_is_masked_raw_and_json_escaped() -> None:
    secret = 'weird"token\\value'
    redact.add_secret(secret)
    encoded = json.dumps({"error": f"echo {secret}"}).encode()
    assert b"weird" not in redact.scrub_bytes(encoded)
    assert "weird" not in redact.scrub(f"echo {secret}")


def test_guarded_standard_streams_scrub_plain_prints(capsys: pytest.CaptureFixture[str]) -> None:
    redact.add_secret(TOKEN)
    redact.guard_standard_streams()
    print(f"oops {TOKEN}", file=sys.stderr)
    print(f"Authorization: Bearer {TOKEN}")
    out, err = capsys.readouterr()
    assert TOKEN not in out + err and "oops [REDACTED]" in err


def test_result_log_writes_are_scrubbed(tmp_path: Path) -> None:
    redact.add_secret(TOKEN)
    log = ResultLog(tmp_path / "r.jsonl", "run")
    log.write({"event": "x", "error": f"HTTP 401: Authorization: Bearer {TOKEN}", "org": ORG})
    log.close()
    text = (tmp_path / "r.jsonl").read_text()
    assert TOKEN not in text and "[REDACTED]" in text and ORG in text
    json.loads(text)  # still one valid record


def test_every_sink_of_a_run_against_an_echoing_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Error bodies (400/401/403/404/409/422/500, JSON and text) repeat the Authorization
    header: the result log (error fields, cancelled records), the structlog stream (JSON and
    console), the summary line and the rich table carry no token; the org stays visible."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(echo_ids()) + "\n")
    logs = io.StringIO()
    with serve(echo_app()) as api:
        for fmt in ("json", "console"):
            configure_logging(level="debug", fmt=fmt, stream=logs, secret=TOKEN)
            s = settings(api.base_url, tmp_path / f"{fmt}.jsonl", concurrency=16, max_attempts=2)
            report = run_job(s, [str(ids)])
            print_summary(report, s)
            print_summary(report, s.replace(progress="on"))
    assert report.exit_code == 3 and report.reason is not None  # the 401 halted the run
    records = (tmp_path / "json.jsonl").read_text() + (tmp_path / "console.jsonl").read_text()
    out, err = capsys.readouterr()
    everything = records + logs.getvalue() + out + err
    assert "Authorization" in everything  # the echoes really came back
    assert '"cancelled"' in records and '"failed"' in records
    assert TOKEN not in everything and "live_token" not in everything
    assert ORG in records and ORG in logs.getvalue()
