"""A corpus of malformed input lines, and mixed files built from it.

Importable from the tests as ``from corpus import ...`` (pytest puts ``tests/`` on
``sys.path``). Every corpus line is one physical line without its line end, and every one
of them must come out of `worker.input.sources.read_inputs` as an ``invalid`` item, whether it
sits in a ``.txt`` file or in the id column of a ``.csv`` file.
"""

from __future__ import annotations

import io
from pathlib import Path

_TEXT_ONLY = {"extra_column_in_text", "json_in_text"}


def malformed_corpus() -> list[tuple[str, bytes]]:
    """Return (kind, line) pairs: at least 30 kinds of lines that hold no valid id."""
    return [
        ("path_traversal_in_id", b"devin-../x"),
        ("path_traversal_before_id", b"../devin-x"),
        ("percent_encoded_slash", b"devin-a%2Fb"),
        ("double_percent_encoding", b"devin-a%252Fb"),
        ("percent_encoded_newline", b"devin-a%0Ab"),
        ("query_string", b"devin-a?x=1"),
        ("fragment", b"devin-a#f"),
        ("backslash", b"devin-a\\b"),
        ("semicolon_parameter", b"devin-a;b=c"),
        ("full_url", b"https://api.devin.ai/v3/organizations/org-1/sessions/devin-x"),
        ("space_inside", b"devin-a b"),
        ("tab_inside", b"devin-a\tb"),
        ("nbsp_inside", "devin-a\u00a0b".encode()),
        ("several_ids", b"devin-abc devin-def"),
        ("inline_comment", b"devin-abc # old one"),
        ("cyrillic_lookalike_prefix", "dеvin-abc".encode()),
        ("cyrillic_lookalike_body", "devin-аbc".encode()),
        ("fullwidth_letters", "ｄｅｖｉｎ-abc".encode()),
        ("division_slash_lookalike", "devin-a\u2215b".encode()),
        ("fullwidth_solidus", "devin-a\uff0fb".encode()),
        ("combining_accent", "devin-e\u0301".encode()),
        ("zero_width_space", "devin-a\u200bb".encode()),
        ("rtl_override", "devin-\u202ecba".encode()),
        ("bom_inside_id", "devin-ab\ufeffc".encode()),
        ("ansi_escape", b"devin-\x1b[31mred"),
        ("nul_inside", b"devin-a\x00b"),
        ("nul_only", b"\x00"),
        ("utf16_encoded", "devin-abc".encode("utf-16-le")),
        ("latin1_byte", b"devin-caf\xe9"),
        ("lone_continuation_byte", b"\x80devin-abc"),
        ("overlong_utf8_slash", b"devin-\xc0\xaf"),
        ("truncated_utf8", b"devin-abc\xe2\x82"),
        ("overlong_line", b"devin-" + b"a" * 5000),
        ("id_too_long", b"devin-" + b"a" * 129),
        ("empty_quotes", b'""'),
        ("quoted_with_space", b'"devin-a b"'),
        ("mismatched_quotes", b"\"devin-abc'"),
        ("prefix_only", b"devin-"),
        ("uppercase_prefix", b"DEVIN-abc"),
        ("underscore_prefix", b"devin_abc"),
        ("no_prefix", b"abc123"),
        ("dot_inside", b"devin-a.b"),
        ("at_sign", b"devin-a@b"),
        ("crlf_with_bad_id", b"devin-bad/crlf\r"),
        ("extra_column_in_text", b"devin-abc,extra"),
        ("json_in_text", b'{"session_id": "devin-abc"}'),
    ]


def malformed_csv_rows() -> list[tuple[str, bytes]]:
    """Rows of a CSV file with the header ``name,session_id,note`` that hold no valid id.

    An unterminated quote opens a field that goes on over the next lines (RFC 4180), so
    the mixed file leaves it out: it is tested on its own.
    """
    return [
        ("missing_column", b"only-a-name"),
        ("empty_cell", b"n,,note"),
        ("blank_cell", b"n,   ,note"),
        ("quoted_empty_cell", b'n,"",note'),
        ("quoted_comma_in_id", b'n,"devin-a,b",note'),
        ("unterminated_quote", b'n,"devin-abc,note'),
        ("text_after_quote", b'n,"devin-abc"junk,note'),
        ("extra_columns_bad_id", b"n,devin-a/b,note,extra,more"),
    ]


def _valid_id(number: int) -> str:
    return f"devin-valid{number:04d}"


def _valid_line(number: int, csv: bool) -> bytes:
    session_id = _valid_id(number)
    decorated = [session_id, f'"{session_id}"', f"  {session_id}\t", f"'{session_id}'"]
    cell = decorated[number % len(decorated)]
    if csv:
        return f"n{number},{cell},note".encode() if number % 4 != 3 else f"n,{session_id}".encode()
    return cell.encode()


def _bad_lines(csv: bool) -> list[bytes]:
    if not csv:
        return [line for _, line in malformed_corpus()]
    cells = [
        line
        for kind, line in malformed_corpus()
        if kind not in _TEXT_ONLY and not any(char in line for char in (b",", b'"', b"\r"))
    ]
    rows = [row for kind, row in malformed_csv_rows() if kind != "unterminated_quote"]
    return [b"n," + cell + b",note" for cell in cells] + rows


def build_mixed_file(path: Path) -> dict[int, str | None]:
    """Write valid ids and every malformed line of the corpus, interleaved, to ``path``.

    The format follows the suffix (``.csv`` or anything else for text). The file starts
    with a byte-order mark, mixes LF and CRLF ends, blank lines and comments. Returns
    {line number: the valid id, or None for a line that must come out invalid}; blank
    lines, comments and the CSV header are not in the mapping.
    """
    csv = path.suffix == ".csv"
    lines: list[bytes] = [b"# a comment"]
    expected: dict[int, str | None] = {}
    if csv:
        lines.append(b"name,session_id,note")
    for number, bad in enumerate(_bad_lines(csv)):
        lines.append(_valid_line(number, csv))
        expected[len(lines)] = _valid_id(number)
        lines.append(bad)
        expected[len(lines)] = None
        if number % 5 == 0:
            lines += [b"", b"   ", b"# comment " + bytes([48 + number % 10])]
    ends = [
        b"\n" if number % 2 or line.endswith(b"\r") else b"\r\n"
        for number, line in enumerate(lines)
    ]
    path.write_bytes(
        b"\xef\xbb\xbf" + b"".join(line + end for line, end in zip(lines, ends, strict=True))
    )
    return expected


class Trickle(io.RawIOBase):
    """A stream handing out at most ``size`` bytes a read, to cut lines at every place."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data = data
        self._size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data[: min(self._size, len(buffer))]
        self._data = self._data[len(chunk) :]
        buffer[: len(chunk)] = chunk
        return len(chunk)
