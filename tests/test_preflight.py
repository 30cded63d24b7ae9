"""Before the first request: the ids are counted first only when something needs the
figure (--max-sessions, the question on a terminal); else a thread counts them over
readers of its own while the run reads the same inputs."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import worker.input.sources
import worker.run.preflight
from worker.errors import ConfigError, InputError
from worker.input.opening import open_sources, reread
from worker.input.sources import count_sources, read_sources
from worker.outcomes import Tally
from worker.run.preflight import count_meanwhile, preflight, require_credentials, spooling
from worker.settings import Settings, load_settings

_IDS = [f"devin-{n:032x}" for n in range(5)]


def _file(tmp_path: Path, ids: list[str] = _IDS) -> str:
    path = tmp_path / "ids.csv"
    path.write_text("session_id\n" + "".join(f"{i}\n" for i in [*ids, ids[0]]))
    return str(path)


def _settings(**flags: Any) -> Settings:
    return load_settings({"org_id": "org-x", "yes": True, **flags}, environ={"DEVIN_API_KEY": "t"})


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_second_readers_start_over_and_leave_the_first_in_place(tmp_path: Path) -> None:
    with open_sources([_file(tmp_path)]) as sources:
        first = read_sources(sources)
        assert next(first).session_id == _IDS[0]
        place = sources[0].stream.tell()
        with reread(sources) as readers:
            assert readers is not None
            assert count_sources(readers) == (len(_IDS), 0)
            assert [item.session_id for item in read_sources(readers)] == [*_IDS, _IDS[0]]
        assert sources[0].stream.tell() == place
        assert [item.session_id for item in first] == [*_IDS[1:], _IDS[0]]


def test_a_second_reader_starts_where_redirected_stdin_started(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("devin-skipped\n" + "".join(f"{i}\n" for i in _IDS))
    with open(path, "rb", buffering=0) as stdin:
        stdin.seek(len("devin-skipped\n"))
        with open_sources(["-"], stdin=stdin) as sources, reread(sources) as readers:
            assert readers is not None
            assert [item.session_id for item in read_sources(readers)] == _IDS


def test_no_second_reader_for_a_pipe_or_a_stream_in_memory(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        with open_sources([f"/dev/fd/{read_end}"]) as sources, reread(sources) as readers:
            assert readers is None
    finally:
        os.close(read_end)
    memory = io.BytesIO(b"devin-a\n")
    with open_sources(["-"], stdin=memory) as sources:
        assert sources[0].rereadable
        with reread(sources) as readers:
            assert readers is None


def test_second_readers_close_their_descriptors(tmp_path: Path) -> None:
    with open_sources([_file(tmp_path), _file(tmp_path)]) as sources:
        before = _open_fds()
        with reread(sources) as readers:
            assert readers is not None and _open_fds() == before + 2
        assert _open_fds() == before


def test_a_second_reader_seeks_only_to_a_place(tmp_path: Path) -> None:
    with open_sources([_file(tmp_path)]) as sources, reread(sources) as readers:
        assert readers is not None
        stream = readers[0].stream
        assert stream.seek(len("session_id\n")) == stream.tell() == len("session_id\n")
        assert stream.read(len(_IDS[0])) == _IDS[0].encode()
        with pytest.raises(io.UnsupportedOperation, match="absolute"):
            stream.seek(0, os.SEEK_END)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every count preflight makes, by its result."""
    made: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> tuple[int, int]:
        result = count_sources(*args, **kwargs)
        made.append(result[0])
        return result

    monkeypatch.setattr(worker.run.preflight, "count_sources", counting)
    return made


def test_nothing_asks_for_the_figure_so_nothing_is_counted_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _spy(monkeypatch)
    asked: list[Callable[[], int | None]] = []

    def confirm(total: Callable[[], int | None], settings: Settings) -> bool:
        asked.append(total)
        return True

    with open_sources([_file(tmp_path)]) as sources:
        assert preflight(_settings(), sources, confirm) is None
        assert preflight(_settings(), sources, None) is None
    assert made == [] and len(asked) == 1


def test_the_question_counts_once_however_often_it_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _spy(monkeypatch)

    def confirm(total: Callable[[], int | None], settings: Settings) -> bool:
        return total() == total() == len(_IDS)

    with open_sources([_file(tmp_path)]) as sources:
        assert preflight(_settings(), sources, confirm) == len(_IDS)
    assert made == [len(_IDS)]


def test_max_sessions_counts_first_and_refuses_above_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _spy(monkeypatch)
    with open_sources([_file(tmp_path)]) as sources:
        assert preflight(_settings(max_sessions=len(_IDS)), sources, None) == len(_IDS)
        with pytest.raises(InputError, match="more than --max-sessions"):
            preflight(_settings(max_sessions=len(_IDS) - 1), sources, None)
    assert made == [len(_IDS), len(_IDS)]


def test_a_refusal_sends_nothing(tmp_path: Path) -> None:
    refused = pytest.raises(InputError, match=r"^not confirmed; nothing was sent$")
    with open_sources([_file(tmp_path)]) as sources, refused:
        preflight(_settings(), sources, lambda total, settings: False)


def test_an_unknown_column_is_refused_before_anything_else(tmp_path: Path) -> None:
    with open_sources([_file(tmp_path)]) as sources, pytest.raises(InputError, match="nope"):
        preflight(_settings(column="nope"), sources, None)


def test_credentials_and_org_are_asked_for_by_name() -> None:
    assert require_credentials(_settings()) == "t"
    no_org = load_settings({}, environ={"DEVIN_API_KEY": "t"})
    with pytest.raises(ConfigError, match=r"--org-id org-\.\.\. or set DEVIN_ORG_ID$"):
        require_credentials(no_org)
    with pytest.raises(ConfigError, match="set DEVIN_API_KEY"):
        require_credentials(load_settings({"org_id": "org-x"}, environ={}))


def test_inputs_are_spooled_only_to_be_counted_for_max_sessions(tmp_path: Path) -> None:
    results = tmp_path / "logs" / "r.jsonl"
    assert spooling(_settings(results=str(results))) is None
    spool = spooling(_settings(results=str(results), max_sessions=3))
    assert spool is not None and spool.directory == results.parent
    assert spool.max_bytes == 1 << 20  # 4 records of 64 KiB are less than the floor


def test_the_count_made_meanwhile_lands_in_the_tally(tmp_path: Path) -> None:
    tally = Tally()
    with open_sources([_file(tmp_path)]) as sources:
        place = sources[0].stream.tell()
        thread = count_meanwhile(_settings(), sources, tally)
        assert thread is not None and thread.daemon and thread.name == "devin-terminate-count"
        thread.join(10)
        assert sources[0].stream.tell() == place
    assert tally.expected == len(_IDS)


def test_the_count_waits_for_the_first_request_and_not_past_the_run(tmp_path: Path) -> None:
    tally, ended = Tally(requests=1), threading.Event()  # the identity check went out
    with open_sources([_file(tmp_path)]) as sources:
        thread = count_meanwhile(_settings(), sources, tally, ended)
        assert thread is not None
        thread.join(0.1)
        assert thread.is_alive() and tally.expected is None  # nothing sent: no count
        tally.requests += 1  # the first DELETE
        thread.join(10)
        assert tally.expected == len(_IDS)
        unsent = count_meanwhile(_settings(), sources, Tally(), ended)
        assert unsent is not None
        ended.set()  # the run ended without sending: the count is never made
        unsent.join(10)
        assert not unsent.is_alive()


def test_no_count_meanwhile_without_progress_to_show_it(tmp_path: Path) -> None:
    tally = Tally(requests=2)  # the first DELETE went out
    with open_sources([_file(tmp_path)]) as sources:
        before = _open_fds()
        assert count_meanwhile(_settings(progress="off"), sources, tally) is None
        assert _open_fds() == before  # no second reader opened
        shown = count_meanwhile(_settings(progress="auto"), sources, Tally())
        assert shown is not None
        shown.join(10)
    assert tally.expected is None


def test_no_count_meanwhile_of_an_input_read_once(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    tally = Tally()
    try:
        with open_sources([f"/dev/fd/{read_end}"]) as sources:
            before = _open_fds()
            assert count_meanwhile(_settings(), sources, tally) is None
            assert _open_fds() == before
    finally:
        os.close(read_end)
    assert tally.expected is None


def test_the_count_pauses_to_leave_the_interpreter_to_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(worker.input.sources.time, "sleep", slept.append)
    with open_sources([_file(tmp_path)]) as sources:  # 6 records
        assert count_sources(sources, pause=(2, 0.25)) == (len(_IDS), 0)
        assert slept == [0.25] * 3
        slept.clear()
        assert count_sources(sources) == (len(_IDS), 0)
    assert slept == []


def _two_columns(tmp_path: Path) -> str:
    """Ids in two columns: five distinct in the first, two in ``other``."""
    path = tmp_path / "two.csv"
    rows = [f"{i},{_IDS[n % 2]}\n" for n, i in enumerate(_IDS)]
    path.write_text("session_id,other\n" + "".join(rows))
    return str(path)


def _result_log(tmp_path: Path) -> str:
    """A result log as input: three sessions failed, two terminated."""
    outcomes = ["failed"] * 3 + ["terminated"] * 2
    path = tmp_path / "results.jsonl"
    path.write_text(
        "".join(
            f'{{"event": "session.result", "session_id": "{i}", "outcome": "{o}"}}\n'
            for i, o in zip(_IDS, outcomes, strict=True)
        )
    )
    return str(path)


@pytest.mark.parametrize(
    ("make", "flags", "expected"),
    [
        (_two_columns, {}, 5),
        (_two_columns, {"column": "other"}, 2),
        (_result_log, {}, 3),
        (_result_log, {"outcome": ["terminated"]}, 2),
    ],
)
def test_both_counts_read_the_column_and_outcomes_chosen(
    tmp_path: Path, make: Callable[[Path], str], flags: dict[str, Any], expected: int
) -> None:
    settings, tally = _settings(**flags), Tally()
    with open_sources([make(tmp_path)]) as sources:
        assert preflight(settings, sources, lambda total, s: total() == expected) == expected
        thread = count_meanwhile(settings, sources, tally)
        assert thread is not None
        thread.join(10)
    assert tally.expected == expected


def test_the_count_made_meanwhile_pauses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(worker.input.sources.time, "sleep", slept.append)
    monkeypatch.setattr(worker.run.preflight, "_PAUSE", (2, 0.25))
    tally = Tally()
    with open_sources([_file(tmp_path)]) as sources:
        thread = count_meanwhile(_settings(), sources, tally)
        assert thread is not None
        thread.join(10)
    assert slept == [0.25] * 3 and tally.expected == len(_IDS)


def test_a_count_that_fails_meanwhile_is_left_to_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uncaught: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", uncaught.append)

    def broken(*args: Any, **kwargs: Any) -> tuple[int, int]:
        raise InputError("cannot read input: gone")

    monkeypatch.setattr(worker.run.preflight, "count_sources", broken)
    tally = Tally()
    with open_sources([_file(tmp_path)]) as sources:
        thread = count_meanwhile(_settings(), sources, tally)
        assert thread is not None
        thread.join(10)
    assert uncaught == [] and tally.expected is None
