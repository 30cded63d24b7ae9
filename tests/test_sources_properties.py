"""Property tests over the sources: nothing crashes, every physical line is accounted for."""

from __future__ import annotations

import io
from pathlib import Path

from corpus import Trickle, malformed_corpus
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from worker.errors import InputError
from worker.input.decoding import binary_reason
from worker.input.ids import trim
from worker.input.sources import MAX_LINE_BYTES, InputItem, read_inputs

_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_BOM = b"\xef\xbb\xbf"
_HEADER = b"session_id,name"

_valid_ids = st.from_regex(r"\Adevin-[A-Za-z0-9_-]{1,20}\Z").map(str.encode)
_near_ids = st.builds(
    lambda session_id, junk, at: session_id[:at] + junk + session_id[at:],
    _valid_ids,
    st.binary(min_size=1, max_size=3),
    st.integers(min_value=0, max_value=25),
)
_line = st.one_of(
    _valid_ids,
    _near_ids,
    st.binary(max_size=40),
    st.text(max_size=20).map(str.encode),
    st.sampled_from([line for _, line in malformed_corpus()]),
    st.sampled_from([b"", b"  ", b"# c", b"\xef\xbb\xbf", b'""', b",", b"{}", b"x" * 4097]),
)
_end = st.sampled_from([b"\n", b"\r\n", b"\r"])


def _file(lines: list[bytes], ends: list[bytes], bom: bool) -> bytes:
    ends = (ends + [b"\n"] * len(lines))[: len(lines)]
    body = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    return (_BOM if bom else b"") + body


def _meaningful(data: bytes) -> list[int]:
    """The physical line numbers that must yield an item (the rule of worker.input.sources)."""
    numbers = []
    for number, line in enumerate(data.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(_BOM):
            stripped = stripped[len(_BOM) :].strip()
        if len(line) > MAX_LINE_BYTES or (stripped and not stripped.startswith(b"#")):
            numbers.append(number)
    return numbers


def _blank_row(line: bytes) -> bool:
    """A CSV row whose cells are all empty (``,,``): skipped, like a blank line."""
    return not any(trim(cell) for cell in line.decode("utf-8", "surrogateescape").split(","))


def _read(data: bytes, path: Path) -> list[InputItem] | None:
    """The items of ``data`` written to ``path``; None when it was refused as not text,
    which its start must justify (`binary_reason`)."""
    assume(not data.startswith((b"\xff\xfe", b"\xfe\xff")))  # UTF-16's BOMs: another test
    path.write_bytes(data)
    try:
        return list(read_inputs([str(path)]))
    except InputError as exc:
        assert "is not text" in str(exc) and binary_reason(data) is not None
        return None


def _numbers(items: list[InputItem]) -> list[int]:
    return [int(item.source.rsplit(":", 1)[1]) for item in items]


def _check_items(items: list[InputItem]) -> None:
    for item in items:
        assert (item.session_id is None) == (item.error is not None)
        if item.session_id is None:
            assert item.error
            assert item.raw is not None
            assert len(item.raw) <= 200
        else:
            assert item.raw is None


@_SETTINGS
@given(st.lists(_line, max_size=30), st.lists(_end, max_size=30), st.booleans())
def test_text_every_line_accounted_for(
    tmp_path: Path, lines: list[bytes], ends: list[bytes], bom: bool
) -> None:
    data = _file(lines, ends, bom)
    items = _read(data, tmp_path / "ids.txt")
    if items is not None:
        _check_items(items)
        assert _numbers(items) == _meaningful(data)


@_SETTINGS
@given(st.lists(_line, max_size=30), st.lists(_end, max_size=30))
def test_csv_every_row_but_the_header_accounted_for(
    tmp_path: Path, lines: list[bytes], ends: list[bytes]
) -> None:
    lines = [line for line in lines if b"session_id" not in line.lower()]  # no header again
    # A quote may open a field that spans lines (RFC 4180): that is test_sources_csv's
    # property; here every record is one physical line.
    lines = [line for line in lines if b'"' not in line]
    data = _file([_HEADER, *lines], ends, bom=True)
    items = _read(data, tmp_path / "ids.csv")
    if items is not None:
        _check_items(items)
        rows = data.splitlines()
        assert _numbers(items) == [n for n in _meaningful(data)[1:] if not _blank_row(rows[n - 1])]


@_SETTINGS
@given(st.lists(_line, max_size=30), st.lists(_end, max_size=30))
def test_jsonl_every_line_accounted_for(
    tmp_path: Path, lines: list[bytes], ends: list[bytes]
) -> None:
    wrapped = [
        b'{"session_id": "' + line + b'"}' if i % 2 else line for i, line in enumerate(lines)
    ]
    data = _file(wrapped, ends, bom=False)
    items = _read(data, tmp_path / "ids.jsonl")
    if items is not None:
        _check_items(items)
        assert _numbers(items) == _meaningful(data)


@_SETTINGS
@given(st.lists(_line, max_size=30), st.lists(_end, max_size=30), st.booleans())
def test_stdin_never_crashes(lines: list[bytes], ends: list[bytes], bom: bool) -> None:
    data = _file(lines, ends, bom)
    try:
        items = list(read_inputs(["-"], stdin=io.BytesIO(data)))
    except InputError as exc:  # sniffed as CSV and no column holds ids, or not text: exit 2
        assert "--column" in str(exc) or "is not text" in str(exc)
        return
    _check_items(items)
    numbers = _numbers(items)
    assert numbers == sorted(set(numbers))
    assert set(numbers) <= set(_meaningful(data))


@_SETTINGS
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=9))
def test_arbitrary_bytes_never_crash(data: bytes, size: int) -> None:
    try:
        items = list(read_inputs(["-"], stdin=io.BufferedReader(Trickle(data, size))))
    except InputError as exc:  # sniffed as CSV and no column holds ids, or not text: exit 2
        assert "--column" in str(exc) or "is not text" in str(exc)
        return
    _check_items(items)
    assert set(_numbers(items)) <= set(_meaningful(data))
