"""Input sources over real files and byte streams: formats, accounting, hardening."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from corpus import Trickle, build_mixed_file, malformed_corpus

from worker.errors import InputError
from worker.input.intake import threaded
from worker.input.sources import (
    MAX_LINE_BYTES,
    InputItem,
    _Hashes,
    check_inputs,
    count_distinct_ids,
    read_inputs,
)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _items(path: str, column: str | None = None) -> list[InputItem]:
    return list(read_inputs([path], column=column))


def _stdin(data: bytes, column: str | None = None) -> list[InputItem]:
    return list(read_inputs(["-"], column=column, stdin=io.BytesIO(data)))


def _lines(items: list[InputItem]) -> list[int]:
    return [int(item.source.rsplit(":", 1)[1]) for item in items]


def test_text_file_accounts_for_every_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "ids.txt", b"\xef\xbb\xbfdevin-a\r\n\n# note\r\n  devin-b  \rdevin-c")
    items = _items(path)
    assert [item.session_id for item in items] == ["devin-a", "devin-b", "devin-c"]
    assert [item.source for item in items] == [f"{path}:1", f"{path}:4", f"{path}:5"]


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_corpus_mixed_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"mixed{suffix}"
    expected = build_mixed_file(path)
    items = _items(str(path))
    assert _lines(items) == sorted(expected)
    for item, line in zip(items, sorted(expected), strict=True):
        assert item.source == f"{path}:{line}"
        assert item.session_id == expected[line], item
        if item.session_id is None:
            assert item.error
            assert item.raw is not None
            assert len(item.raw) <= 200
            assert item.raw.isprintable()


def test_corpus_has_thirty_kinds() -> None:
    kinds = [kind for kind, _ in malformed_corpus()]
    assert len(set(kinds)) == len(kinds) >= 30


def test_invalid_item_reasons(tmp_path: Path) -> None:
    data = b"devin-caf\xe9\ndevin-a\x00b\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\n" + b"devin-ok\n"
    items = _items(_write(tmp_path, "ids.txt", data))
    assert [item.error for item in items[:3]] == [
        "not valid UTF-8 (byte 0xE9 at column 10)",
        "contains a NUL byte (binary or UTF-16? save the list as UTF-8 text)",
        f"line longer than {MAX_LINE_BYTES} bytes",
    ]
    assert items[0].raw == "devin-caf\\xe9"
    assert items[1].raw == "devin-a\\x00b"
    assert items[2].raw == "x" * 197 + "..."
    assert items[3] == InputItem(items[3].source, "devin-ok")


def test_line_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    session_id = "devin-" + "a" * 128
    line = session_id.encode().rjust(MAX_LINE_BYTES)
    items = _items(_write(tmp_path, "ids.txt", line + b"\r\n" + line + b"\r"))
    assert [item.session_id for item in items] == [session_id, session_id]


def test_text_hints(tmp_path: Path) -> None:
    data = b'{"session_id": "devin-a"}\ndevin-a devin-b\ndevin-a,devin-b\n'
    assert [item.error for item in _items(_write(tmp_path, "ids.txt", data))] == [
        "looks like JSON; give JSON lines a .jsonl name",
        "several values on one line (put one id per line)",
        "looks like a CSV row; give CSV files a .csv name",
    ]


def test_bom_on_a_line_mid_file_is_dropped(tmp_path: Path) -> None:
    data = b"devin-a\n\xef\xbb\xbfdevin-b\n\xef\xbb\xbf\n"
    assert [item.session_id for item in _items(_write(tmp_path, "ab.txt", data))] == [
        "devin-a",
        "devin-b",
    ]


def test_csv_header_picks_known_column(tmp_path: Path) -> None:
    data = b'name,Devin_ID\nx,devin-a\n"y, z", "devin-b"\n\n# c\nw\nsession_x,devin_id\n'
    items = _items(_write(tmp_path, "s.csv", data))
    assert [(item.session_id, item.error) for item in items] == [
        ("devin-a", None),
        ("devin-b", None),
        (None, "missing column 'Devin_ID' (the row has 1 cells)"),
        (None, "does not start with 'devin-'"),
    ]
    assert _lines(items) == [2, 3, 6, 7]


def test_csv_repeated_header_is_skipped(tmp_path: Path) -> None:
    data = b"session_id,n\ndevin-a,1\nsession_id,n\ndevin-b,2\n"
    items = _items(_write(tmp_path, "joined.csv", data))
    assert [item.session_id for item in items] == ["devin-a", "devin-b"]


def test_csv_without_known_column_uses_the_first(tmp_path: Path) -> None:
    items = _items(_write(tmp_path, "s.csv", b"who,what\ndevin-a,x\n"))
    assert [item.session_id for item in items] == ["devin-a"]


def test_csv_column_option(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.csv", b"session_id,Other\ndevin-a,devin-b\n")
    assert [item.session_id for item in _items(path, column="other")] == ["devin-b"]
    with pytest.raises(InputError, match=r"s\.csv: no column named 'nope'.*'session_id', 'Other'"):
        _items(path, column="nope")
    with pytest.raises(InputError, match="no column named 'nope'"):
        check_inputs([path], column="nope")
    check_inputs([path], column="other")


def test_csv_without_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.csv", b'devin-a,1\ndevin-b\n"devin-c",3\n')
    assert [item.session_id for item in _items(path)] == ["devin-a", "devin-b", "devin-c"]
    with pytest.raises(InputError, match="needs a header row"):
        _items(path, column="session_id")


def test_csv_first_row_attempting_an_id_is_data(tmp_path: Path) -> None:
    items = _items(_write(tmp_path, "s.csv", b"devin-a/b,1\ndevin-c,2\n"))
    assert [(item.session_id, _lines([item])[0]) for item in items] == [(None, 1), ("devin-c", 2)]


def test_csv_bad_quoting_is_invalid(tmp_path: Path) -> None:
    # The quote opened on line 2 closes at the start of line 3: one record, text after it.
    items = _items(_write(tmp_path, "s.csv", b'id\n"devin-a\n"devin-b"x\ndevin-c\n'))
    assert [(item.session_id, _lines([item])[0]) for item in items] == [(None, 2), ("devin-c", 4)]
    assert items[0].error == "not a valid CSV row: ',' expected after '\"'"


def test_jsonl(tmp_path: Path) -> None:
    lines = [
        b'{"session_id": "devin-a"}',
        b'{"devin_id": " devin-b "}',
        b'{"id": "devin-c", "x": 1}',
        b"[1, 2]",
        b'{"session_id": 7}',
        b'{"other": "devin-d"}',
        b"{not json",
        b'{"session_id": "devin-\\u002fx"}',
    ]
    items = _items(_write(tmp_path, "s.ndjson", b"\n".join(lines)))
    assert [item.session_id for item in items[:3]] == ["devin-a", "devin-b", "devin-c"]
    errors = [item.error or "" for item in items[3:]]
    assert errors[:3] == [
        "not a JSON object (got list)",
        "'session_id' is not a string (got int)",
        "no 'session_id' or 'devin_id' or 'id' key in the object",
    ]
    assert errors[3].startswith("not valid JSON: ")
    assert errors[4] == "contains '/' (ids cannot contain path separators)"


def test_jsonl_column_option(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.jsonl", b'{"session_id": "devin-a", "sid": "devin-b"}\n')
    assert [item.session_id for item in _items(path, column="sid")] == ["devin-b"]


def test_dry_run_result_log_feeds_back(tmp_path: Path) -> None:
    records = [
        {"event": "run.started", "run_id": "r", "inputs": ["x"]},
        {"event": "session.result", "session_id": "devin-a", "outcome": "would_terminate"},
        {"event": "session.result", "session_id": "devin-b", "outcome": "invalid"},
        {"event": "session.result", "session_id": "devin-c", "outcome": "terminated"},
        {"event": "run.finished", "counts": {}},
        {"event": "something.else", "session_id": "devin-d"},
    ]
    path = _write(tmp_path, "results.jsonl", b"\n".join(orjson.dumps(r) for r in records))
    items = _items(path)
    assert [(item.session_id, _lines([item])[0]) for item in items] == [
        ("devin-d", 6),  # not a record of the log: an id as any other
        ("devin-a", 2),  # the log's, once its history is known
    ]


def _log_items(tmp_path: Path, records: list[dict[str, object]], *outcomes: str) -> list[object]:
    path = _write(tmp_path, "r.jsonl", b"\n".join(orjson.dumps(r) for r in records))
    chosen = list(read_inputs([path], outcomes=outcomes or None))
    return [(item.session_id, _lines([item])[0], item.uncertain) for item in chosen]


def test_a_result_log_as_input_takes_each_ids_latest_result(tmp_path: Path) -> None:
    def sending(sid: str) -> dict[str, object]:
        return {"event": "session.sending", "session_id": sid}

    def result(sid: str, outcome: str, status: int | None = None) -> dict[str, object]:
        return {"event": "session.result", "session_id": sid, "outcome": outcome,
                "http_status": status}  # fmt: skip

    clean = [sending("devin-a"), result("devin-a", "terminated"), sending("devin-b"),
             result("devin-b", "archived")]  # fmt: skip
    assert _log_items(tmp_path, clean) == []  # intents are no results
    assert _log_items(tmp_path, clean, "failed") == []
    assert _log_items(tmp_path, clean, "archived") == [("devin-b", 4, False)]
    retried = [
        result("devin-a", "failed", 500),
        result("devin-a", "terminated", 200),  # failed, then settled by a rerun
        result("devin-b", "failed", 503),
        sending("devin-b"),  # sent again, killed before the answer
        sending("devin-c"),  # sent, never answered: no result selects it
        result("devin-d", "failed", 403),
    ]
    assert _log_items(tmp_path, retried, "terminated") == [("devin-a", 2, False)]
    assert _log_items(tmp_path, retried) == [("devin-b", 3, True), ("devin-d", 6, False)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\n# hi\ndevin-a\ndevin-b\n", ["devin-a", "devin-b"]),
        (b'\n{"session_id": "devin-a"}\n{"id": "devin-b"}\n', ["devin-a", "devin-b"]),
        (b"name,session_id\nx,devin-a\ny,devin-b\n", ["devin-a", "devin-b"]),
        (b"session_id\ndevin-a\ndevin-b\n", ["devin-a", "devin-b"]),
        (b"devin-a,1\ndevin-b,2\n", ["devin-a", "devin-b"]),
        (b"", []),
    ],
)
def test_stdin_is_sniffed(data: bytes, expected: list[str]) -> None:
    items = _stdin(data)
    assert [item.session_id for item in items] == expected
    assert all(item.source.startswith("-:") for item in items)


def test_stdin_sniffs_past_undecodable_lines() -> None:
    items = _stdin(b'\xff\xfd\n{"id": "devin-a"}\n')  # (FF FE would be UTF-16's BOM)
    assert [(item.session_id, item.source) for item in items] == [(None, "-:1"), ("devin-a", "-:2")]


def test_no_inputs_reads_stdin() -> None:
    items = list(read_inputs([], stdin=io.BytesIO(b"devin-a\n")))
    assert items == [InputItem("-:1", "devin-a")]


def test_several_inputs_in_order(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.txt", b"devin-a\n")
    second = _write(tmp_path, "b.jsonl", b'{"id": "devin-b"}\n')
    items = list(read_inputs([first, "-", second], stdin=io.BytesIO(b"devin-s\n")))
    assert [item.source for item in items] == [f"{first}:1", "-:1", f"{second}:1"]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_line_ends_split_across_reads(size: int) -> None:
    data = b"devin-a\r\n\r\ndevin-b\rdevin-c\r\r\n" + b"z" * 5000 + b"\r\ndevin-d\r"
    items = list(read_inputs(["-"], stdin=Trickle(data, size)))  # type: ignore[arg-type]
    assert [(item.session_id, item.source) for item in items] == [
        ("devin-a", "-:1"),
        ("devin-b", "-:3"),
        ("devin-c", "-:4"),
        (None, "-:6"),
        ("devin-d", "-:7"),
    ]


def test_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"nope\.csv.*no such file"):
        check_inputs([missing])
    with pytest.raises(InputError, match=r"nope\.csv.*no such file"):
        list(read_inputs([missing]))


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"{tmp_path}.*is a directory"):
        check_inputs(["-", str(tmp_path)])


def test_path_through_a_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "f.txt", b"")
    with pytest.raises(InputError, match=r"f\.txt/x"):
        check_inputs([path + "/x"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "secret.txt", b"devin-a\n")
    os.chmod(path, 0)
    with pytest.raises(InputError, match=r"secret\.txt.*permission denied"):
        check_inputs([path])


def test_count_distinct_ids(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.txt", b"devin-a\ndevin-b\ndevin-a\nbad\n")
    second = _write(tmp_path, "b.csv", b"id\ndevin-b\ndevin-c\n,\nx\n")  # "," holds nothing
    assert count_distinct_ids([first, second]) == (3, 2)
    with pytest.raises(ValueError, match="stdin"):
        count_distinct_ids([first, "-"])
    with pytest.raises(ValueError, match="stdin"):
        count_distinct_ids([])


def test_count_distinct_ids_with_many_repeats(tmp_path: Path) -> None:
    lines = [f"devin-{n % 7}" for n in range(5000)] + [f"devin-x{n}" for n in range(3000)]
    path = _write(tmp_path, "many.txt", "\n".join(lines).encode())
    assert count_distinct_ids([path]) == (3007, 0)


def test_reader_thread_stops_when_the_consumer_leaves() -> None:
    def endless() -> Iterator[InputItem]:
        for number in itertools.count(1):
            yield InputItem(f"x:{number}", f"devin-{number}")

    async def take(count: int) -> list[InputItem]:
        got: list[InputItem] = []
        stream = threaded(endless())
        async for item in stream:
            got.append(item)
            if len(got) == count:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return got

    before = set(threading.enumerate())
    assert [item.session_id for item in asyncio.run(take(10))][-1] == "devin-10"
    for thread in set(threading.enumerate()) - before:
        thread.join(10)
        assert not thread.is_alive()


def test_the_count_keeps_distinct_hashes_across_its_compactions() -> None:
    """One array's share, deduplicated each time it doubles, still counts each hash once."""
    hashes = _Hashes()
    one_array = [n << 8 for n in range(3000)]  # all with the same low byte
    hashes.add_all(one_array)
    hashes.add_all(reversed(one_array))  # each met twice: compacted at 1024, 2048, ...
    hashes.add_all([-1, 255, -1])  # a negative hash, another array
    assert hashes.distinct() == 3000 + 2
