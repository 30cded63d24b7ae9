"""Session id parsing: what is accepted, what is trimmed, and the reason for the rest."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from corpus import malformed_corpus
from hypothesis import given
from hypothesis import strategies as st

from worker.input.ids import SESSION_ID_PATTERN, InvalidId, parse_session_id

_ID_BODY = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
    min_size=1,
    max_size=128,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("devin-abc", "devin-abc"),
        ("devin-" + "a" * 128, "devin-" + "a" * 128),
        ("devin-a_b-C9", "devin-a_b-C9"),
        ("devin--", "devin--"),
        ("  devin-abc \t", "devin-abc"),
        ("\ufeffdevin-abc", "devin-abc"),
        ('"devin-abc"', "devin-abc"),
        ("'devin-abc'", "devin-abc"),
        (' " devin-abc " ', "devin-abc"),
        ("devin-abc\r\n", "devin-abc"),
        ("\u3000devin-abc\u00a0", "devin-abc"),
    ],
)
def test_accepts_and_trims(raw: str, expected: str) -> None:
    assert parse_session_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ('""', "empty"),
        ("devin-", "nothing after 'devin-'"),
        ("abc", "does not start with 'devin-'"),
        ("DEVIN-abc", "does not start with 'devin-' (the prefix is lower-case)"),
        ("devin-../x", "contains '/' (ids cannot contain path separators)"),
        ("devin-a\\b", "contains '\\\\' (ids cannot contain path separators)"),
        ("devin-..", "contains '..' (ids cannot contain path segments)"),
        ("https://h/devin-x", "looks like a URL; give the bare id (devin-...)"),
        ("devin-a%2Fb", "contains a percent-encoded character ('%2F')"),
        ("devin-a?x=1", "contains '?' (ids cannot carry a query string)"),
        ("devin-a#f", "contains '#' (ids cannot carry a fragment)"),
        ("devin-a b", "contains whitespace inside the id"),
        ("devin-a\tb", "contains whitespace inside the id"),
        ("devin-a\x00b", "contains a control character (U+0000)"),
        ("devin-\x1b[0m", "contains a control character (U+001B)"),
        ("devin-a\u200bb", "contains an invisible character U+200B ZERO WIDTH SPACE"),
        ("devin-a%", "contains '%' (allowed after 'devin-': letters, digits, '_' and '-')"),
        ("devin-a.b", "contains '.' (allowed after 'devin-': letters, digits, '_' and '-')"),
    ],
)
def test_rejects_with_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidId) as caught:
        parse_session_id(raw)
    assert caught.value.reason == reason == str(caught.value)


def test_look_alike_letters_are_named() -> None:
    with pytest.raises(InvalidId, match=r"U\+0435 CYRILLIC SMALL LETTER IE \(look-alike"):
        parse_session_id("dеvin-abc")
    with pytest.raises(InvalidId, match=r"U\+FF44 FULLWIDTH LATIN SMALL LETTER D"):
        parse_session_id("ｄevin-abc")


def test_too_long_says_the_limit() -> None:
    with pytest.raises(InvalidId, match=r"^longer than 134 characters \(135;"):
        parse_session_id("devin-" + "a" * 129)


def test_invalid_id_is_a_value_error() -> None:
    assert issubclass(InvalidId, ValueError)


def test_pattern_rejects_a_trailing_newline() -> None:
    assert SESSION_ID_PATTERN.match("devin-abc\n") is None
    assert SESSION_ID_PATTERN.match("devin-abc")


@pytest.mark.parametrize(("kind", "line"), malformed_corpus())
def test_corpus_lines_are_rejected(kind: str, line: bytes) -> None:
    text = line.decode("utf-8", "replace")
    with pytest.raises(InvalidId) as caught:
        parse_session_id(text)
    assert caught.value.reason, kind


@given(st.text())
def test_accepted_ids_never_change_a_url(raw: str) -> None:
    try:
        session_id = parse_session_id(raw)
    except InvalidId as exc:
        assert exc.reason
        return
    assert quote(session_id, safe="") == session_id
    assert SESSION_ID_PATTERN.match(session_id)
    assert session_id in raw


@given(_ID_BODY, st.sampled_from(["", " ", "\t", "\ufeff", "\u3000"]), st.sampled_from(["", '"']))
def test_valid_ids_survive_decoration(body: str, space: str, quote_char: str) -> None:
    session_id = f"devin-{body}"
    raw = f"{space}{quote_char}{session_id}{quote_char} "
    assert parse_session_id(raw) == session_id


@given(_ID_BODY, st.integers(min_value=0, max_value=20), st.characters())
def test_any_foreign_character_inside_is_rejected(body: str, where: int, char: str) -> None:
    if char in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-":
        return
    where = min(where, len(body) - 1)
    raw = f"devin-{body[:where]}{char}{body[where:]}x"
    with pytest.raises(InvalidId):
        parse_session_id(raw)


@pytest.mark.parametrize("raw", ["devin-abc\x1f", "\ufeffdevin-abc\x1c", '"devin-abc\x85"'])
def test_trimming_keeps_control_characters_that_str_strip_would_eat(raw: str) -> None:
    with pytest.raises(InvalidId, match=r"^contains a control character \(U\+00(1F|1C|85)\)$"):
        parse_session_id(raw)


def test_exact_reasons_for_an_unnamed_character_a_letter_x_and_length() -> None:
    cases = {
        "devin-a\u0378": "contains non-ASCII character U+0378 "
        "(look-alike letters are not accepted)",
        "devin-X.b": "contains '.' (allowed after 'devin-': letters, digits, '_' and '-')",
        "devin-" + "a" * 129: "longer than 134 characters (135; an id is 'devin-' "
        "plus at most 128 letters, digits, '_' or '-')",
    }
    for raw, reason in cases.items():
        with pytest.raises(InvalidId) as caught:
            parse_session_id(raw)
        assert caught.value.reason == reason
    assert parse_session_id("devin-" + "X" * 128) == "devin-" + "X" * 128


def test_is_session_id_agrees_with_the_parser() -> None:
    from worker.input.ids import is_session_id

    assert is_session_id(" devin-abc123 ")
    assert not is_session_id("devin-../admin")
    assert not is_session_id("")
