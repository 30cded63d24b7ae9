"""CSV as real files hold it (RFC 4180 quoting over lines, delimiters, id headers), and
`list` output read back whole whatever the titles hold: in-process, over real bytes."""

from __future__ import annotations

import csv
import io
import os
import tracemalloc
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.devin.models import SessionResponse
from worker.errors import ConfigError, InputError
from worker.input.csvrecords import records
from worker.input.lines import physical_lines
from worker.input.opening import Spooling, open_sources
from worker.input.sources import (
    MAX_RECORD_BYTES,
    InputItem,
    check_inputs,
    count_sources,
    read_inputs,
    read_sources,
)
from worker.output.rows import RowWriter
from worker.settings import load_settings
from worker.simulator.config import SimulatorConfig
from worker.simulator.population import make_population

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _ids(items: list[InputItem]) -> list[str | None]:
    return [item.session_id for item in items]


def _line(item: InputItem) -> int:
    return int(item.source.rsplit(":", 1)[1])


_ids_st = st.from_regex(r"\Adevin-[A-Za-z0-9_-]{1,24}\Z")
_hostile = st.sampled_from(
    ["\n", "\r", "\r\n", '"', '""', ",", ";", "\t", "|", "#", "\ufeff", " ", "\x00", "devin-x"]
)
_cell = st.one_of(
    st.text(max_size=12),
    _ids_st,
    st.lists(st.one_of(_hostile, _ids_st, st.text(max_size=3)), max_size=6).map("".join),
)
_names = st.from_regex(r"\A[a-z][a-z ]{0,8}\Z").filter(lambda n: n.strip() not in ("id",))


@_SETTINGS
@given(
    st.sampled_from([",", ";", "\t", "|"]),
    st.lists(_names, min_size=0, max_size=3),
    st.integers(min_value=0, max_value=3),
    st.lists(st.tuples(_ids_st, st.lists(_cell, min_size=3, max_size=3)), max_size=12),
)
def test_any_csv_written_by_the_csv_module_reads_back_the_same_ids(
    delimiter: str, others: list[str], at: int, rows: list[tuple[str, list[str]]]
) -> None:
    others = [name for name in others if "session" not in name.replace(" ", "")]
    at = min(at, len(others))
    header = [*others[:at], "session_id", *others[at:]]
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    starts = []
    for session_id, extra in rows:
        starts.append(len(out.getvalue().encode().splitlines()) + 1)
        writer.writerow([*extra[:at], session_id, *extra[at : len(others)]])
    items = list(read_inputs(["-"], stdin=io.BytesIO(out.getvalue().encode())))
    assert _ids(items) == [session_id for session_id, _ in rows]
    assert [_line(item) for item in items] == starts


def _listed(sessions: list[SessionResponse], fmt: str = "csv") -> bytes:
    out = io.StringIO(newline="")
    columns = ("session_id", "status", "created_at", "updated_at", "is_archived", "tags", "title")
    RowWriter(columns, fmt, out).rows(sessions, None)
    return out.getvalue().encode()


def _hostile_sessions(count: int = 300) -> list[SessionResponse]:
    population = make_population(SimulatorConfig(sessions=count, hostile_titles=True), 1e9)
    return [SessionResponse.model_validate(session) for session in population.values()]


def test_list_output_reads_back_every_session_and_nothing_else() -> None:
    sessions = _hostile_sessions()
    assert any("\n" in (s.title or "") for s in sessions)
    assert any("cog_" in (s.title or "") for s in sessions)
    for fmt in ("csv", "ids"):
        items = list(read_inputs(["-"], stdin=io.BytesIO(_listed(sessions, fmt))))
        assert _ids(items) == [s.session_id for s in sessions], fmt


def test_list_cuts_a_huge_title_so_the_row_still_reads_back() -> None:
    session = _hostile_sessions(1)[0]
    huge = session.model_copy(update={"title": ('"\ndevin-victim,x\n' * 20_000)})
    items = list(read_inputs(["-"], stdin=io.BytesIO(_listed([huge]))))
    assert _ids(items) == [session.session_id]


def test_list_ids_skips_a_hostile_id_from_the_api() -> None:
    good, bad = _hostile_sessions(2)[:2]
    bad = bad.model_copy(update={"session_id": "devin-a\ndevin-victim"})
    assert _listed([bad, good], "ids") == f"{good.session_id}\n".encode()


def test_spreadsheet_csv_bom_semicolons_crlf(tmp_path: Path) -> None:
    data = (
        "\ufeffOwner;Session ID;Note\r\n"
        'ann;devin-a;"line one\r\nline two; still the note"\r\n'
        'bob;"devin-b";plain\r\n'
        '"c;d";devin-c;"quote "" and\r\ndevin-victim;x"\r\n'
    ).encode()
    items = list(read_inputs([_write(tmp_path, "export.csv", data)]))
    assert [(item.session_id, _line(item)) for item in items] == [
        ("devin-a", 2),
        ("devin-b", 4),
        ("devin-c", 5),
    ]


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("who|session_id|x", None),
        ("who|sessionId|x", None),
        ("who|SESSION|x", None),
        ("who|Devin_ID|x", None),
        ("who|Devin Session ID|x", None),
        ("who|the ids|x", "The_IDs"),
    ],
)
def test_id_headers_in_any_spelling(tmp_path: Path, header: str, column: str | None) -> None:
    data = f"{header}\nann|devin-a|devin-nope\n".encode()
    items = list(read_inputs([_write(tmp_path, "s.csv", data)], column=column))
    assert _ids(items) == ["devin-a"]


def test_tab_separated_with_an_empty_first_cell(tmp_path: Path) -> None:
    data = b"owner\tsession_id\n\tdevin-a\nbob\tdevin-b\n"
    assert _ids(list(read_inputs([_write(tmp_path, "s.tsv", data)]))) == ["devin-a", "devin-b"]


def test_unknown_header_takes_the_only_column_holding_ids(tmp_path: Path) -> None:
    data = b"owner,ref,note\nann,devin-a,x\nbob,,y\ncid,devin-c,z\n"
    items = list(read_inputs([_write(tmp_path, "s.csv", data)]))
    assert [(item.session_id, _line(item)) for item in items] == [
        ("devin-a", 2),
        (None, 3),
        ("devin-c", 4),
    ]


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"Owner;Note\nann;hello\nbob;world\n", "no column holds"),
        (b"parent,child\ndevin-a,devin-b\n", "several columns hold"),
    ],
)
def test_no_single_id_column_is_exit_2_naming_the_header(
    tmp_path: Path, data: bytes, found: str
) -> None:
    path = _write(tmp_path, "s.csv", data)
    for check in (lambda: list(read_inputs([path])), lambda: check_inputs([path])):
        with pytest.raises(InputError, match=found) as caught:
            check()
        assert caught.value.exit_code == 2
        assert "--column" in str(caught.value)
        assert "'Owner', 'Note'" in str(caught.value) or "'parent', 'child'" in str(caught.value)


def test_comment_rows_are_dropped_unless_they_hold_an_id(tmp_path: Path) -> None:
    data = b'# a comment\nname,session_id\n# another,"with\ndevin-victim" inside\n#x,devin-a\n'
    items = list(read_inputs([_write(tmp_path, "s.csv", data)]))
    assert [(item.session_id, _line(item)) for item in items] == [("devin-a", 5)]


def test_quoted_field_never_closed_is_one_invalid_record_in_bounded_memory(
    tmp_path: Path,
) -> None:
    rows = b"".join(b"devin-%08d,x\n" % n for n in range(150_000))
    path = _write(tmp_path, "s.csv", b'session_id,note\ndevin-a,"never closed\n' + rows)
    tracemalloc.start()
    try:
        items = list(read_inputs([path]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(rows) > 30 * MAX_RECORD_BYTES
    assert [(item.session_id, _line(item)) for item in items] == [(None, 2)]
    assert items[0].error is not None and "never closed" in items[0].error
    assert peak < 1_200_000  # a few blocks (0.8 MB measured), not the 2.3 MB file


def test_record_over_the_bound_is_invalid_and_reading_goes_on(tmp_path: Path) -> None:
    field = b"devin-victim,x\n" * (MAX_RECORD_BYTES // 10)
    overlong_line = b"y" * (MAX_RECORD_BYTES + 10) + b"\ndevin-victim2,x\n"
    data = (
        b"session_id,title\n"
        + b'devin-a,"'
        + field
        + b'"\n'
        + b'devin-b,"'
        + overlong_line
        + b'"\ndevin-c,ok\n'
    )
    items = list(read_inputs([_write(tmp_path, "s.csv", data)]))
    assert [item.session_id for item in items] == [None, None, "devin-c"]
    assert items[0].error is not None and "longer than" in items[0].error
    assert _line(items[2]) == data.count(b"\n")


def test_result_log_outcomes(tmp_path: Path) -> None:
    outcomes = ["failed", "cancelled", "would_terminate", "terminated", "archived", "invalid"]
    records = [{"event": "run.started", "run_id": "r"}]
    records += [
        {"event": "session.result", "session_id": f"devin-{o}", "outcome": o} for o in outcomes
    ]
    records.append({"event": "session.result", "session_id": None, "outcome": "invalid"})
    path = _write(tmp_path, "results.jsonl", b"\n".join(map(orjson.dumps, records)))
    assert _ids(list(read_inputs([path]))) == [
        "devin-failed",
        "devin-cancelled",
        "devin-would_terminate",
    ]
    chosen = list(read_inputs([path], outcomes=["archived", "invalid", "terminated"]))
    assert _ids(chosen) == ["devin-terminated", "devin-archived", "devin-invalid"]


def _spooling(directory: Path) -> Spooling:
    """A spool that reads nothing while it copies, bounded at 1 MiB."""
    return Spooling(directory, 1 << 20, lambda source: None)


def test_a_pipe_is_spooled_once_then_counted_and_read(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(b"session_id\ndevin-a\ndevin-b\ndevin-a\n")
    name = f"/dev/fd/{read_end}"
    try:
        with open_sources([name], spool=_spooling(tmp_path)) as sources:
            assert sources[0].rereadable
            assert count_sources(sources) == (2, 0)
            assert _ids(list(read_sources(sources))) == ["devin-a", "devin-b", "devin-a"]
        assert os.listdir(tmp_path) == []  # the spool was never linked
    finally:
        os.close(read_end)


def test_a_pipe_not_counted_is_read_once_by_the_run(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(b"devin-a\n")
    try:
        with open_sources([f"/dev/fd/{read_end}"]) as sources:
            assert not sources[0].rereadable
            with pytest.raises(ValueError, match="read twice"):
                count_sources(sources)
            assert _ids(list(read_sources(sources))) == ["devin-a"]
    finally:
        os.close(read_end)


def test_list_output_saved_as_txt_is_still_read_as_csv(tmp_path: Path) -> None:
    sessions = _hostile_sessions(120)
    path = _write(tmp_path, "ids.txt", _listed(sessions))
    assert _ids(list(read_inputs([path]))) == [s.session_id for s in sessions]


def test_excel_sep_directive(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfsep=;\r\nOwner,Team;Session ID\r\nann,core;devin-a\r\n"
    assert _ids(list(read_inputs([_write(tmp_path, "x.csv", data)]))) == ["devin-a"]
    assert _ids(list(read_inputs(["-"], stdin=io.BytesIO(data)))) == ["devin-a"]


@_SETTINGS
@given(st.text(alphabet='a,"\n\r', max_size=40))
def test_records_group_lines_as_the_csv_module_does(data: str) -> None:
    try:
        expected = [row for row in csv.reader(io.StringIO(data, newline=""), strict=True) if row]
    except csv.Error:
        return  # the csv module refuses it too; either way no id is taken from it
    lines = physical_lines(io.BytesIO(data.encode()), "-")
    got = [cells for _, cells, _, _ in records(lines, ",")]
    ends = [[cell.replace("\r\n", "\n").replace("\r", "\n") for cell in row] for row in expected]
    assert got == ends


def test_outcome_setting_from_flag_env_and_toml(tmp_path: Path) -> None:
    assert load_settings({"outcome": ["failed"]}, environ={}).outcome == ("failed",)
    env = {"DEVIN_TERMINATE_OUTCOME": "failed, archived"}
    assert load_settings({}, environ=env).outcome == ("failed", "archived")
    toml = tmp_path / "c.toml"
    toml.write_text('outcome = ["terminated"]\n')
    assert load_settings({}, config=str(toml), environ={}).outcome == ("terminated",)
    with pytest.raises(ConfigError, match="outcome"):
        load_settings({"outcome": ["finished"]}, environ={})


def test_a_character_device_is_read_once(tmp_path: Path) -> None:
    with open_sources([os.devnull]) as sources:
        assert not sources[0].rereadable
        assert list(read_sources(sources)) == []
    with open_sources([os.devnull], spool=_spooling(tmp_path)) as sources:
        assert sources[0].rereadable and count_sources(sources) == (0, 0)
