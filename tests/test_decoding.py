"""What counts as text at the start of an input, and the encodings a flag may name."""

from __future__ import annotations

import errno
import io

import pytest

from worker.errors import InputError
from worker.input.decoding import binary_reason, check_encoding, text_blocks


@pytest.mark.parametrize(
    ("bad", "binary"), [(0, False), (30, False), (31, True), (70, True)], ids=str
)
def test_more_than_three_tenths_not_text_is_binary(bad: int, binary: bool) -> None:
    sample = b"\x01" * bad + b"a" * (100 - bad)
    reason = binary_reason(sample)
    assert (reason is not None) == binary
    if binary:
        assert reason == (
            "it is mostly bytes that are not text (binary, or another encoding: --encoding)"
        )


def test_undecodable_bytes_count_as_not_text() -> None:
    assert binary_reason(b"\xff" * 31 + b"a" * 69) is not None
    assert binary_reason(b"\xff" * 30 + b"a" * 70) is None


def test_mostly_nul_says_utf16_may_be_why() -> None:
    reason = binary_reason("devin-a\n".encode("utf-16-le") * 8)
    assert reason is not None and "--encoding utf-16-le" in reason


def test_an_encoding_is_named_canonically_or_refused_with_examples() -> None:
    assert check_encoding("CP1252") == "cp1252"
    with pytest.raises(ValueError, match=r"unknown encoding 'klingon'; e\.g\. utf-8, cp1252"):
        check_encoding("klingon")


class _Broken(io.RawIOBase):
    def __init__(self, first: bytes) -> None:
        self._first = first

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._first:
            first, self._first = self._first, b""
            return first
        raise OSError(errno.EIO, "Input/output error")


@pytest.mark.parametrize("first", [b"", b"de"], ids=["first read", "a trickle"])
def test_a_read_error_names_the_input(first: bytes) -> None:
    with pytest.raises(InputError, match=r"cannot read input 'ids\.txt': Input/output error"):
        list(text_blocks(_Broken(first), "ids.txt", 4096))
