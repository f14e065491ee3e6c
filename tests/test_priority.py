"""The one priority parser: input cells and ``Downloader.submit`` read priorities alike."""

from __future__ import annotations

import pytest

from coupa_async.running.priority import DEFAULT_PRIORITY, PRIORITY_NAMES, parse_priority


def test_names_and_default() -> None:
    assert PRIORITY_NAMES == {"URGENT": 0, "HIGH": 1, "NORMAL": 2, "LOW": 3}
    assert DEFAULT_PRIORITY == 2 == PRIORITY_NAMES["NORMAL"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("URGENT", 0),
        ("urgent", 0),
        ("high", 1),
        ("Normal", 2),
        (" low ", 3),
        ("\tHIGH\n", 1),
        ("0", 0),
        ("7", 7),
        ("+3", 3),
        ("-1", -1),
        (" 12 ", 12),
        ("", DEFAULT_PRIORITY),
        ("   ", DEFAULT_PRIORITY),
        (None, DEFAULT_PRIORITY),
        (0, 0),
        (4, 4),
        (-5, -5),
        (1.0, 1),
        (-2.0, -2),
    ],
)
def test_parse_priority(value: object, expected: int) -> None:
    parsed = parse_priority(value)
    assert parsed == expected
    assert type(parsed) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "boolean"),
        (False, "boolean"),
        ("asap", "URGENT, HIGH, NORMAL, LOW"),
        ("HIGHEST", "URGENT, HIGH, NORMAL, LOW"),
        ("1.5", "not a whole number"),
        ("1.0", "not a whole number"),
        ("1_000", "not a whole number"),
        ("٣", "not a whole number"),  # an Arabic-Indic digit: int() would take it
        (2.5, "not a whole number"),
        (float("nan"), "not a whole number"),
        (float("inf"), "not a whole number"),
    ],
)
def test_parse_priority_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_priority(value)
