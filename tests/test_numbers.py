"""PO numbers: every form users type, and the many ways a cell can be wrong."""

from __future__ import annotations

import pickle

import pytest

from coupa_async.coupa.numbers import InvalidPoNumber, PoNumber, parse_po_number

BASE = "https://acme.coupahost.com"


@pytest.mark.parametrize(
    ("raw", "digits", "prefix"),
    [
        ("PO15262984", "15262984", "PO"),
        ("po15262984", "15262984", "PO"),
        ("Po15262984", "15262984", "PO"),
        (" PO15262984 ", "15262984", "PO"),
        ("15262984", "15262984", "PO"),
        ("PM15262984", "15262984", "PM"),
        ("pm15262984", "15262984", "PM"),
        ("pM15262984", "15262984", "PM"),
        ("\tPO15262984\n", "15262984", "PO"),
        ("\u00a0PO15262984\u00a0", "15262984", "PO"),
        ("\u200bPO15262984\u200b", "15262984", "PO"),
        ("\ufeff15262984", "15262984", "PO"),
        ("PO1526\u200b2984", "15262984", "PO"),
        ("\u3000PM15262984\r\n", "15262984", "PM"),
        ("PO 15262984", "15262984", "PO"),
        ("00015262984", "00015262984", "PO"),
        ("PO0001", "0001", "PO"),
        ("1" * 20, "1" * 20, "PO"),
        (15262984, "15262984", "PO"),
        (15262984.0, "15262984", "PO"),
        (0, "0", "PO"),
    ],
)
def test_valid_forms(raw: object, digits: str, prefix: str) -> None:
    po = parse_po_number(raw)
    assert po == PoNumber(digits, prefix)
    assert po.label == f"{prefix}{digits}"
    assert str(po) == po.label


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        ("", "empty"),
        ("   ", "empty"),
        ("\u00a0\t\u200b", "empty"),
        (True, "true/false"),
        (False, "true/false"),
        ("PO", "no digits follow the PO prefix"),
        ("pm ", "no digits follow the PM prefix"),
        ("PO12A4", "after the PO/PM prefix only digits may follow"),
        ("PO-15262984", "after the PO/PM prefix only digits may follow"),
        ("PO#15262984", "after the PO/PM prefix only digits may follow"),
        ("POPO15262984", "after the PO/PM prefix only digits may follow"),
        ("PR15262984", "only digits may follow an optional PO or PM prefix"),
        ("P.O.15262984", "only digits may follow an optional PO or PM prefix"),
        ("15262984x", "only digits may follow an optional PO or PM prefix"),
        ("-15262984", "only digits may follow an optional PO or PM prefix"),
        ("+15262984", "only digits may follow an optional PO or PM prefix"),
        ("ＰＯ15262984", "only digits may follow an optional PO or PM prefix"),
        ("١٢", "ASCII digits"),
        ("PO١٢٣", "ASCII digits"),
        ("１２３", "ASCII digits"),
        ("1.5262984E+7", "scientific notation"),
        ("1,5262984E+07", "scientific notation"),
        ("1.5262984e7", "scientific notation"),
        ("15262984.0", "decimal point"),
        ("15262984,5", "decimal point"),
        ("1526 2984", "blank inside"),
        ("1" * 21, "21 digits; at most 20"),
        ("PO" + "9" * 25, "25 digits; at most 20"),
        (10**21, "22 digits; at most 20"),
        (-15262984, "negative"),
        (15262984.5, "fractional part"),
        (-1.0, "negative"),
        (float("nan"), "not a finite number"),
        (float("inf"), "not a finite number"),
        (2.0**60, "too large"),
        (b"15262984", "got bytes"),
        ([15262984], "got list"),
    ],
)
def test_invalid_forms(raw: object, reason: str) -> None:
    with pytest.raises(InvalidPoNumber) as caught:
        parse_po_number(raw)
    message = str(caught.value)
    assert "is not a PO number" in message
    assert reason in message
    assert caught.value.reason in message
    assert isinstance(caught.value, ValueError)


def test_message_names_the_value() -> None:
    with pytest.raises(InvalidPoNumber) as caught:
        parse_po_number("PO12A4")
    assert str(caught.value) == (
        "'PO12A4' is not a PO number: after the PO/PM prefix only digits may follow"
    )
    assert caught.value.value == "PO12A4"


def test_long_values_are_shortened_in_the_message() -> None:
    with pytest.raises(InvalidPoNumber) as caught:
        parse_po_number("x" * 1000)
    assert len(str(caught.value)) < 200


def test_error_survives_pickling() -> None:
    error = InvalidPoNumber("PO1A", "because")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.reason == "because"


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("PO15262984", f"{BASE}/order_headers/15262984"),
        ("PM15262984", f"{BASE}/order_headers/15262984"),
        ("PO00042", f"{BASE}/order_headers/00042"),
    ],
)
@pytest.mark.parametrize("base", [BASE, f"{BASE}/", f"{BASE}//"])
def test_order_url(raw: str, url: str, base: str) -> None:
    assert parse_po_number(raw).order_url(base) == url


@pytest.mark.parametrize(
    ("digits", "prefix"),
    [("12A", "PO"), ("", "PO"), ("123", "PR"), ("123", "po"), ("1" * 21, "PO"), ("١٢", "PO")],
)
def test_po_number_cannot_be_built_invalid(digits: str, prefix: str) -> None:
    with pytest.raises(InvalidPoNumber):
        PoNumber(digits, prefix)


def test_po_number_is_hashable_and_frozen() -> None:
    po = parse_po_number("PO1")
    assert {po, parse_po_number("po 1")} == {po}
    assert parse_po_number("PM1") != po
    with pytest.raises(AttributeError):
        po.digits = "2"  # type: ignore[misc]
