"""The fast path of the readers: runs of plain ids, taken a block at a time, give exactly
the items the line-by-line readers give, whatever the input around them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import quick_settings, read_results
from corpus import Trickle
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from worker.errors import InputError
from worker.input.idset import IdSet, Visit
from worker.input.items import run_items
from worker.input.lines import IdRun
from worker.input.opening import Source
from worker.input.sources import InputItem, read_entries
from worker.run.job import run_job
from worker.simulator.config import SimulatorConfig
from worker.simulator.population import terminable_ids
from worker.simulator.server import RunningSimulator, simulator_in_thread

_SETTINGS = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
_plain = st.from_regex(r"\Adevin-[A-Za-z0-9_-]{1,12}\Z").map(str.encode)
_odd = st.sampled_from(
    [
        b"",
        b"  devin-spaced ",
        b"\xef\xbb\xbfdevin-bom",
        b'"devin-quoted"',
        b'"devin-open,\xe2\x80\x9ca title',  # a quoted field that spans lines
        b'closed"',
        b"# a comment",
        b"devin-a,devin-b",
        b"devin-tab\tx",
        b"session_id",
        b"devin-caf\xc3\xa9",
        b"devin-nul\x00",
        b"devin-" + b"x" * 200,
        b'{"session_id": "devin-json"}',
        b"x" * 65_537,  # longer than a record may be
    ]
)
_line = st.one_of(_plain, _plain, _plain, _odd)
_end = st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b"\r"])
_header = st.sampled_from([b"", b"session_id\n", b"session_id,name\n", b"name;session_id\n"])


def _entries(name: str, data: bytes, size: int, runs: bool) -> Iterator[InputItem | IdRun]:
    source = Source(name, Trickle(data, size), rereadable=False)  # type: ignore[arg-type]
    return read_entries([source], runs=runs)


def _items(entries: Iterator[InputItem | IdRun]) -> list[InputItem] | str:
    """Every item, the runs' too; or the message of the input's error."""
    items: list[InputItem] = []
    try:
        for entry in entries:
            items.extend(run_items(entry) if isinstance(entry, IdRun) else [entry])
    except InputError as exc:
        return str(exc)
    return items


@_SETTINGS
@given(
    st.sampled_from(["ids.csv", "ids.txt", "ids.tsv", "-"]),
    _header,
    st.lists(st.tuples(_line, _end), max_size=60),
    st.integers(min_value=1, max_value=200),
)
@example("ids.txt", b"", [(b"devin-a", b"\r\n")] * 8, 9)  # CRLF: a run's lines end in LF alone
@example("ids.csv", b"session_id\n", [(b"devin-a", b"\r")] * 8, 9)
@example("-", b"session_id\n", [(b"devin-a", b"\n"), (b'"devin-b', b"\n")] * 4, 9)
def test_runs_give_what_the_lines_give(
    name: str, header: bytes, lines: list[tuple[bytes, bytes]], size: int
) -> None:
    data = header + b"".join(line + end for line, end in lines)
    fast = _items(_entries(name, data, size, runs=True))
    assert fast == _items(_entries(name, data, size, runs=False))


def _plain_file(count: int, header: bytes = b"session_id\n") -> tuple[bytes, list[str]]:
    ids = [f"devin-run{n:012d}" for n in range(count)]
    return header + "".join(f"{sid}\n" for sid in ids).encode(), ids


@pytest.mark.parametrize(("name", "header"), [("ids.csv", b"session_id\n"), ("ids.txt", b"")])
def test_plain_ids_come_in_runs_at_their_lines(name: str, header: bytes) -> None:
    data, ids = _plain_file(20_000, header)
    entries = list(read_entries([Source(name, io.BytesIO(data), rereadable=False)]))
    runs = [entry for entry in entries if isinstance(entry, IdRun)]
    assert sum(len(run.ids) for run in runs) > 15_000  # all but the first block
    first = len(header.splitlines()) + 1
    for run in runs:
        assert run.source == name
        assert run.ids == ids[run.first - first : run.first - first + len(run.ids)]
    assert _items(iter(entries)) == _items(_entries(name, data, 1 << 16, runs=False))


def test_a_run_with_the_ids_in_another_column_is_read_line_by_line() -> None:
    data, _ = _plain_file(5000, b"name,session_id\nx,devin-first\n")
    entries = list(read_entries([Source("ids.csv", io.BytesIO(data), rereadable=False)]))
    assert not any(isinstance(entry, IdRun) for entry in entries)
    assert entries[1].error is not None and "missing column 'session_id'" in entries[1].error


@given(
    st.lists(st.integers(0, 40), max_size=40),
    st.lists(st.integers(0, 60), max_size=120),
    st.integers(0, 10),
)
def test_visit_run_counts_as_visit_does(settled: list[int], seen: list[int], start: int) -> None:
    one, bulk = IdSet(capacity=4), IdSet(capacity=4)
    for n in settled:
        one.add(f"devin-{n}")
        bulk.add(f"devin-{n}")
    ids = [f"devin-{n}" for n in seen]
    start = min(start, len(ids))
    visits = [one.visit(sid) for sid in ids[start:]]
    at = start
    while at < len(ids):
        index, old, again = bulk.visit_run(ids, at)
        before = visits[at - start : index - start]
        assert (old, again) == (before.count(Visit.SETTLED), before.count(Visit.DUPLICATE))
        assert Visit.NEW not in before
        if index < len(ids):
            assert visits[index - start] is Visit.NEW
        at = index + 1
    assert len(one) == len(bulk)


CONFIG = SimulatorConfig(
    sessions=20, exit_ratio=0.0, error_ratio=0.0, seed=7, token="cog_runs", org_id="org-runs"
)
_RECORD = '{{"event":"session.result","session_id":"{sid}","outcome":"terminated"}}\n'


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with simulator_in_thread(CONFIG) as running:
        yield running


def test_a_rerun_in_runs_skips_counts_and_sends_from_the_right_lines(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    """Thousands of settled ids in runs, duplicates among them, four new ids inside the runs
    and --limit 2: the counts and the lines are those of reading line by line."""
    _, settled = _plain_file(6000)
    new = terminable_ids(sim.sessions)[:4]
    rows = [*settled]
    for at, sid in zip((2500, 3000, 4500, 5990), new, strict=True):
        rows.insert(at, sid)
    rows[3500:3500] = settled[:7]  # met again
    inputs = tmp_path / "ids.csv"
    inputs.write_text("session_id\n" + "".join(f"{sid}\n" for sid in rows))
    results = tmp_path / "r.jsonl"
    results.write_text("".join(_RECORD.format(sid=sid) for sid in settled))
    report = run_job(
        quick_settings(CONFIG.org_id, CONFIG.token, sim.base_url, results, limit=2), [str(inputs)]
    )
    assert report.counts == {"skipped": 6000, "duplicate": 7, "terminated": 2, "deferred": 2}
    sent = [r for r in read_results(results)[6000:] if r["event"] == "session.result"]
    lines = [f"{inputs}:{rows.index(sid) + 2}" for sid in new[:2]]
    assert sorted(r["source"] for r in sent) == lines
