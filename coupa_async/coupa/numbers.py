"""PO numbers as users type them: parsing, the folder label and the PO page address."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

MAX_DIGITS = 20
PREFIXES = ("PO", "PM")

_DIGITS = re.compile(r"[0-9]+")
_SCIENTIFIC = re.compile(r"[+-]?[0-9]*[.,]?[0-9]+[eE][+-]?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+[.,][0-9]+")
# Spreadsheet numbers are doubles: above 2**53 the digits a cell shows are no longer exact.
_LARGEST_EXACT_FLOAT = 2**53
_SHOWN_CHARS = 60


class InvalidPoNumber(ValueError):
    """A value that is not a PO number; the message says what is wrong with it."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"{_show(value)} is not a PO number: {reason}")

    def __reduce__(self) -> tuple[type[InvalidPoNumber], tuple[object, str]]:
        return type(self), (self.value, self.reason)


@dataclass(frozen=True, slots=True)
class PoNumber:
    """A valid PO number: its ASCII digits and its prefix, ``PO`` or ``PM``."""

    digits: str
    prefix: str = "PO"

    def __post_init__(self) -> None:
        if self.prefix not in PREFIXES:
            raise InvalidPoNumber(
                f"{self.prefix}{self.digits}", f"the prefix must be one of {', '.join(PREFIXES)}"
            )
        if _DIGITS.fullmatch(self.digits) is None or len(self.digits) > MAX_DIGITS:
            raise InvalidPoNumber(
                f"{self.prefix}{self.digits}", f"the number must be 1 to {MAX_DIGITS} digits 0-9"
            )

    @property
    def label(self) -> str:
        """The name used for folders and reports, e.g. ``PO15262984`` or ``PM15262984``."""
        return f"{self.prefix}{self.digits}"

    def order_url(self, base_url: str) -> str:
        """The address of this PO's page on the tenant at ``base_url``."""
        return f"{base_url.rstrip('/')}/order_headers/{self.digits}"

    def __str__(self) -> str:
        return self.label


def parse_po_number(raw: object) -> PoNumber:
    """Read a PO number as it comes from a CSV or spreadsheet cell.

    Accepts ``PO15262984``, ``po15262984``, `` PO 15262984 ``, ``15262984``, ``PM15262984``,
    the int ``15262984`` and the integral float ``15262984.0``. Raises InvalidPoNumber otherwise.
    """
    text = _strip_blanks(_as_text(raw))
    if not text:
        raise InvalidPoNumber(raw, "it is empty")
    prefix = None
    body = text
    head = text[:2]
    if head.isascii() and head.upper() in PREFIXES:
        prefix = head.upper()
        body = _strip_blanks(text[2:])
        if not body:
            raise InvalidPoNumber(raw, f"no digits follow the {prefix} prefix")
    if _DIGITS.fullmatch(body) is None:
        raise InvalidPoNumber(raw, _why_not_digits(body, has_prefix=prefix is not None))
    if len(body) > MAX_DIGITS:
        raise InvalidPoNumber(raw, f"it has {len(body)} digits; at most {MAX_DIGITS} are allowed")
    return PoNumber(body, prefix or "PO")


def _as_text(raw: object) -> str:
    if raw is None:
        raise InvalidPoNumber(raw, "the cell is empty")
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        raise InvalidPoNumber(raw, "a true/false value is not a PO number")
    if isinstance(raw, int):
        if raw < 0:
            raise InvalidPoNumber(raw, "it is negative")
        return str(int(raw))
    if isinstance(raw, float):
        return _whole_number_text(raw)
    raise InvalidPoNumber(raw, f"expected text or a whole number, got {type(raw).__name__}")


def _whole_number_text(raw: float) -> str:
    if not math.isfinite(raw):
        raise InvalidPoNumber(raw, "it is not a finite number")
    if not raw.is_integer():
        raise InvalidPoNumber(raw, "it has a fractional part")
    if raw < 0:
        raise InvalidPoNumber(raw, "it is negative")
    if raw >= _LARGEST_EXACT_FLOAT:
        raise InvalidPoNumber(
            raw,
            "it is too large to be stored exactly as a spreadsheet number; "
            "format the column as text",
        )
    return str(int(raw))


def _strip_blanks(text: str) -> str:
    # Zero-width and other invisible format characters are dropped wherever they are:
    # they come from copy-and-paste and the user cannot see them.
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return visible.strip()


def _why_not_digits(body: str, *, has_prefix: bool) -> str:
    if _SCIENTIFIC.fullmatch(body):
        return (
            "it is in scientific notation, which may have lost digits; "
            "format the spreadsheet column as text"
        )
    if any(ch.isdigit() and not ch.isascii() for ch in body):
        return "only the ASCII digits 0-9 are allowed"
    if _DECIMAL.fullmatch(body):
        return "it has a decimal point; a PO number is a whole number"
    if any(ch.isspace() for ch in body):
        return "it has a blank inside the number"
    if has_prefix:
        return "after the PO/PM prefix only digits may follow"
    return "only digits may follow an optional PO or PM prefix"


def _show(value: object) -> str:
    shown = repr(value)
    if len(shown) > _SHOWN_CHARS:
        shown = f"{shown[: _SHOWN_CHARS - 3]}..."
    return shown
