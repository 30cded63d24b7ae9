"""``report --html``: one self-contained page that a strict HTML5 parser reads, with the
counts of ``report --format json``, whatever the logs hold."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import html5lib
import orjson
import pytest
from conftest import cli_env, run_cli

from worker.output.html import MAX_BUCKETS, MAX_LISTED, buckets
from worker.output.report import summarize

HOSTILE = (
    '</td></tr></table><script src="https://evil.example/x.js">alert(1)</script>'
    "\x00\x07\u202e\ufdd0\ufffe<img src=x onerror=alert(1)> url(https://evil.example/f.woff)"
)
SVG = "{http://www.w3.org/2000/svg}"  # the namespace the parser gives inline SVG
_OUTCOMES = ("terminated", "terminated", "terminated", "not_found", "already_terminated", "failed")


def _write_log(path: Path, records: int, *, start: int = 1_800_000_000) -> None:
    """``records`` session results over ten minutes, a sixth failed, some with hostile text."""
    lines = [orjson.dumps({"event": "run.started", "run_id": "r1", "ts": _ts(start)})]
    for i in range(records):
        outcome = _OUTCOMES[i % len(_OUTCOMES)]
        record = {
            "event": "session.result",
            "run_id": "r1",
            "ts": _ts(start + i * 600 // records) + ".123Z",
            "session_id": f"devin-{i:07d}",
            "outcome": outcome,
            "attempts": 1 + i % 3,
            "error": (HOSTILE if i % 7 == 0 else "HTTP 500: boom") if outcome == "failed" else None,
        }
        lines.append(orjson.dumps(record))
    lines.append(b"not json at all \xff")
    path.write_bytes(b"\n".join(lines) + b"\n")


def _ts(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _parse(page: bytes) -> Any:
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    return parser.parse(page)  # raises ParseError at the first error


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[str, Any]]:
    """A 100,000-record log, its page and ``report --format json``."""
    folder = tmp_path_factory.mktemp("html")
    log = folder / "r.jsonl"
    _write_log(log, 100_000)
    page = folder / "r.html"
    env = cli_env()
    proc = run_cli(["report", str(log), "--html", str(page)], env, cwd=folder)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    report = run_cli(["report", str(log), "--format", "json"], env, cwd=folder)
    return log, page.read_bytes(), json.loads(report.stdout)


def test_a_100000_record_log_gives_one_small_valid_page(big: tuple[Path, bytes, Any]) -> None:
    _, page, _ = big
    assert len(page) < 5_000_000
    _parse(page)


def test_the_page_refers_to_nothing_outside_itself(big: tuple[Path, bytes, Any]) -> None:
    tree = _parse(big[1])
    tags = {re.sub(r"^\{.*\}", "", el.tag) for el in tree.iter() if isinstance(el.tag, str)}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "base", "audio"}
    for el in tree.iter():
        for name, value in el.attrib.items():
            assert not re.search(r"(^|\W)(src|href|srcset|action|on\w+)$", str(name)), name
            assert "url(" not in value or re.fullmatch(r"url\(#[\w-]+\)", value), value
    style = "".join(el.text or "" for el in tree.iter("style"))
    assert "url(" not in style and "@import" not in style


def test_the_counts_are_those_of_report_json(big: tuple[Path, bytes, Any]) -> None:
    _, page, report = big
    tree = _parse(page)
    rows = tree.findall(".//table[@id='counts']/tbody/tr")
    records = {r.get("data-outcome"): int(r.find("td[@data-records]").text) for r in rows}
    latest = {r.get("data-outcome"): r.find("td[@data-latest]").text for r in rows}
    assert {k: v for k, v in records.items() if v} == report["counts"]
    assert {k: int(v) for k, v in latest.items() if v not in ("-", "0")} == report["latest"]


def test_failed_sessions_are_listed_with_their_reasons_capped_and_escaped(
    big: tuple[Path, bytes, Any],
) -> None:
    _, page, report = big
    tree = _parse(page)
    failed = report["latest"]["failed"]
    rows = tree.findall(".//table[@id='sessions']/tbody/tr")
    assert failed > MAX_LISTED == len(rows)
    assert f"Sessions listed: {failed}" in page.decode()
    reasons = {row.findall("td")[2].text for row in rows}
    assert "HTTP 500: boom" in reasons
    shown = next(r for r in reasons if r and "script" in r)  # the hostile text, as text
    assert "<script" in shown and not re.search("[\x00-\x1f\u202e\ufdd0\ufffe]", shown)


def test_the_timeline_counts_every_result_in_at_most_the_cap_of_bars(
    big: tuple[Path, bytes, Any],
) -> None:
    log, page, report = big
    summary = summarize([log], timeline=True)
    assert summary.timeline is not None
    _, width, bars = buckets(summary.timeline)
    assert len(bars) <= MAX_BUCKETS and width * len(bars) >= 600
    for outcome in ("terminated", "failed", "not_found"):
        assert sum(bar[outcome] for bar in bars) == report["counts"][outcome]
    svg = [el for el in _parse(page).iter() if str(el.tag).startswith(SVG)]
    legend = {el.text for el in svg if el.tag == f"{SVG}text"}
    assert {"terminated", "failed", "not_found", "already_terminated"} <= legend  # labels
    fills = {el.get("fill") for el in svg if el.tag == f"{SVG}rect" and len(el)}
    assert len(fills) == 4 and all(f.startswith("url(#p-") for f in fills)  # patterns


def test_html_reads_logs_not_redis(tmp_path: Path) -> None:
    proc = run_cli(
        ["report", "--redis", "redis://127.0.0.1:1/0", "--html", str(tmp_path / "p.html")],
        cli_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "--html" in proc.stderr
